export { answerDeletion, answerWrite, viewOf, withEtag } from "./answers.js";
export {
  type NamedRecord,
  openStore,
  RecordContractError,
  type RecordDeletion,
  type RecordKind,
  type RecordWrite,
  type Revisioned,
  type RevisionedBucket,
  RevisionedStore,
} from "./store.js";
