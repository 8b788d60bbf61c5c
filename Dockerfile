# One image for the services; docker-compose.yml picks the service by its command.
# Services run from TypeScript source with tsx (no build step), exactly as in development.
FROM node:20-bookworm-slim
WORKDIR /app
ENV CI=true
RUN npm install -g pnpm@10.34.9 && npm cache clean --force

# Every workspace package's manifest (the globs of pnpm-workspace.yaml), so the frozen install
# matches the lockfile and this layer is cached until a dependency changes. The compose test
# checks this list against pnpm-workspace.yaml.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY packages/contracts/package.json packages/contracts/
COPY packages/service-kit/package.json packages/service-kit/
COPY packages/messages/package.json packages/messages/
COPY services/lead-intake/package.json services/lead-intake/
COPY services/scheduler/package.json services/scheduler/
COPY services/dispatcher/package.json services/dispatcher/
COPY services/reports/package.json services/reports/
COPY services/console/package.json services/console/
COPY test/package.json test/
COPY test/harness/package.json test/harness/
COPY bench/package.json bench/
# Not --prod: tsx, which runs the services, is a devDependency of the workspace root.
RUN pnpm install --frozen-lockfile

COPY packages packages
COPY services services
# lead-intake keeps its durable outbox under .data/ (a volume in docker-compose.yml).
RUN mkdir -p .data && chown node:node .data
ENV NODE_ENV=production
USER node
# Overridden per service by docker-compose.yml.
CMD ["node", "--import", "tsx", "services/lead-intake/src/main.ts"]
