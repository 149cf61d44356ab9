// A Node.js client built from proto/ at run time with @grpc/proto-loader, driving a running
// server through a gated promotion.
//
// Usage: node tests/polyglot/client.mjs HOST:PORT   (after `npm install` in tests/polyglot)
//
// It proves that the .proto files load in a dynamic client with the options the README
// recommends, and that errors carry what a client needs: the proto field names, the accepted
// enum values, and google.rpc details that decode.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const protoDir = path.join(root, "proto");
const files = [
  "pipeline_service.proto",
  "app_service.proto",
  "coupling_service.proto",
  "release_service.proto",
  "promotion_service.proto",
].map((name) => `pipelines/v1/${name}`);

// keepCase: fields as the protos spell them; longs: Number is exact because every int64 the
// service sends stays below 2^53; enums: String gives names such as "STAGE_STAGING".
const definition = protoLoader.loadSync(files, {
  includeDirs: [protoDir],
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});
const v1 = grpc.loadPackageDefinition(definition).pipelines.v1;

// google.rpc.Status and PreconditionFailure, as far as this client reads them (the full
// definitions are google/rpc/status.proto and error_details.proto in googleapis).
const rpc = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: "int32", id: 1 },
                message: { type: "string", id: 2 },
                details: { rule: "repeated", type: "Any", id: 3 },
              },
            },
            Any: {
              fields: { type_url: { type: "string", id: 1 }, value: { type: "bytes", id: 2 } },
            },
            PreconditionFailure: {
              fields: { violations: { rule: "repeated", type: "Violation", id: 1 } },
              nested: {
                Violation: {
                  fields: {
                    type: { type: "string", id: 1 },
                    subject: { type: "string", id: 2 },
                    description: { type: "string", id: 3 },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
});

/** The google.rpc details of a gRPC error, decoded where this client knows the type. */
function errorDetails(error) {
  const [bytes] = error.metadata.get("grpc-status-details-bin");
  if (!bytes) return [];
  const status = rpc.lookupType("google.rpc.Status").decode(bytes);
  return status.details.map((any) => {
    if (any.type_url.endsWith("/google.rpc.PreconditionFailure")) {
      return rpc.lookupType("google.rpc.PreconditionFailure").decode(any.value);
    }
    return any;
  });
}

const address = process.argv[2] ?? "127.0.0.1:50051";
const credentials = grpc.credentials.createInsecure();
const client = (Service) => new Service(address, credentials);
const pipelines = client(v1.PipelineService);
const apps = client(v1.AppService);
const couplings = client(v1.CouplingService);
const releases = client(v1.ReleaseService);
const promotions = client(v1.PromotionService);

const call = (stub, method, request) =>
  new Promise((resolve, reject) =>
    stub[method](request, { deadline: Date.now() + 10_000 }, (error, answer) =>
      error ? reject(error) : resolve(answer),
    ),
  );

async function refused(promise, code) {
  try {
    await promise;
  } catch (error) {
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail("the call was accepted");
}

/** Every event of a watch after `after_sequence`, up to its end. */
function watch(id, after_sequence) {
  return new Promise((resolve, reject) => {
    const events = [];
    const stream = promotions.WatchPromotion(
      { id, after_sequence },
      { deadline: Date.now() + 30_000 },
    );
    stream.on("data", (event) => events.push(event));
    stream.on("error", reject);
    stream.on("end", () => resolve(events));
  });
}

let checks = 0;
const name = `js-${randomUUID().slice(0, 8)}`;
const pipeline = await call(pipelines, "CreatePipeline", { name });
assert.equal(pipeline.name, name);
checks++;

const invalidName = await refused(
  call(pipelines, "CreatePipeline", { name: "Not Valid" }),
  grpc.status.INVALID_ARGUMENT,
);
assert.match(invalidName.details, /name/);
checks++;

const dev = `${name}-dev`;
const staging = `${name}-stg`;
for (const app of [dev, staging]) await call(apps, "CreateApp", { name: app });
// An enum left at its zero value is refused with the names it accepts.
const unset = await refused(
  call(couplings, "CreateCoupling", { app: dev, pipeline: name, stage: "STAGE_UNSPECIFIED" }),
  grpc.status.INVALID_ARGUMENT,
);
assert.match(unset.details, /accepted values: STAGE_REVIEW, STAGE_DEVELOPMENT/);
checks++;
await call(couplings, "CreateCoupling", { app: dev, pipeline: name, stage: "STAGE_DEVELOPMENT" });
await call(couplings, "CreateCoupling", {
  app: staging,
  pipeline: name,
  stage: "STAGE_STAGING",
  required_status_checks: { contexts: ["ci/unit"] },
});
const release = await call(releases, "CreateRelease", { app: dev, image: "registry/js:1" });
assert.equal(release.version, 1);
assert.equal(typeof release.version, "number");
checks++;

// Errors name the request message's own fields.
const noSource = await refused(
  call(promotions, "CreatePromotion", { pipeline: name, source_app: "" }),
  grpc.status.INVALID_ARGUMENT,
);
assert.match(noSource.details, /source_app/);
checks++;

// The gate: an unmet required check, with a PreconditionFailure detail that decodes.
const request = { pipeline: name, source_app: dev };
const blocked = await refused(
  call(promotions, "CreatePromotion", request),
  grpc.status.FAILED_PRECONDITION,
);
const [failure] = errorDetails(blocked);
assert.equal(failure.violations.length, 1);
assert.equal(failure.violations[0].type, "STATUS_CHECK");
assert.match(failure.violations[0].subject, /ci\/unit/);
checks++;

await call(releases, "CreateReleaseStatus", {
  app: dev,
  release_id: release.id,
  context: "ci/unit",
  name: "Unit",
  state: "STATUS_STATE_SUCCESS",
});
const created = await call(promotions, "CreatePromotion", request);
assert.equal(created.result, "promotion");
const id = created.promotion.id;
const events = await watch(id, 0);
assert.deepEqual(
  events.map((e) => e.sequence),
  events.map((_, i) => i + 1),
);
const last = events.at(-1);
assert.equal(last.type, "EVENT_TYPE_PROMOTION_FINISHED");
assert.equal(last.promotion_status, "PROMOTION_STATUS_SUCCESSFUL");
checks++;

// Resuming after a sequence number sends only what follows it.
const resumed = await watch(id, 2);
assert.deepEqual(
  resumed.map((e) => e.sequence),
  events.slice(2).map((e) => e.sequence),
);
checks++;

const { targets } = await call(promotions, "ListPromotionTargets", { id });
assert.deepEqual(
  targets.map((t) => t.app.name),
  [staging],
);
assert.equal(targets[0].status, "TARGET_STATUS_SUCCEEDED");
assert.equal(targets[0].release.version, 1);
checks++;

console.log(`node client: ${checks} checks passed against ${address}`);
process.exit(0);
