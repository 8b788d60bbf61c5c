// The providers' fakes: real servers on 127.0.0.1 that check each request as the provider does.
export { FailureScript, type FakeRequest } from "./fake-http.js";
export {
  FakeSendGrid,
  type SendGridFailure,
  type SendGridMailRecord,
  startFakeSendGrid,
} from "./sendgrid.js";
export { FakeSlack, type SlackFailure, type SlackPostRecord, startFakeSlack } from "./slack.js";
export {
  type ReceivedMail,
  type SmtpFailure,
  SmtpTestServer,
  type SmtpTestServerOptions,
  type SmtpUser,
  startSmtpServer,
} from "./smtp.js";
export {
  FakeTwilio,
  type FakeTwilioAccount,
  startFakeTwilio,
  type TwilioFailure,
  type TwilioMessageRecord,
} from "./twilio.js";
