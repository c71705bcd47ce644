// Checks an OpenAPI document served by a live idnode, and the node's answers against it.
//
//   node tests/openapi/check.mjs DOC.json SAMPLES.json
//
// DOC.json: the document as GET /api/openapi.json returned it.
// SAMPLES.json: [{"name", "method", "path" (the document's path template), "status",
//                 "contentType", "body"}], answers the live node gave (integration_openapi_test
//                 collects them).
//
// 1. DOC validates as OpenAPI 3.1 (@seriousme/openapi-schema-validator: the official 3.1 schema
//    and dialect, on Ajv).
// 2. Each sample's status and content type are documented for its operation (or by its
//    "default" response), and a JSON body validates against that response's schema (JSON Schema
//    2020-12, Ajv); an NDJSON body line by line against the media type's x-ndjson-line-schema,
//    the last line being the summary.
// Prints one line per check and "N passed, N failed"; exits 1 on any failure.
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [docPath, samplesPath] = process.argv.slice(2);
if (!docPath || !samplesPath) {
    console.error("usage: node check.mjs DOC.json SAMPLES.json");
    process.exit(2);
}
const doc = JSON.parse(readFileSync(docPath, "utf8"));
const samples = JSON.parse(readFileSync(samplesPath, "utf8"));

let passed = 0, failed = 0;
const ok = (name) => { passed++; console.log(`ok   ${name}`); };
const fail = (name, why) => { failed++; console.log(`FAIL ${name}: ${why}`); };

// ---- 1. the document -------------------------------------------------------------------------
const validator = new Validator();
const result = await validator.validate(structuredClone(doc));
if (validator.version !== "3.1")
    fail("document is OpenAPI 3.1", `the validator read it as version ${validator.version}`);
else if (!result.valid)
    fail("document validates as OpenAPI 3.1", JSON.stringify(result.errors, null, 1));
else
    ok("document validates as OpenAPI 3.1");

// ---- 2. the answers ----------------------------------------------------------------------------
// The whole document is one schema resource, so that response schemas and their
// "#/components/schemas/…" references resolve inside it.
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
const kDoc = "urn:idnode:openapi";
ajv.addSchema(doc, kDoc);

const pointer = (...parts) =>
    "/" + parts.map((p) => String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join("/");
const resolve = (node) => {
    // A Reference Object inside the document ("#/components/responses/…").
    while (node && typeof node.$ref === "string" && node.$ref.startsWith("#/")) {
        node = node.$ref.slice(2).split("/").reduce(
            (o, p) => o?.[p.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
    }
    return node;
};
const compiled = new Map();
const validatorAt = (ptr) => {
    if (!compiled.has(ptr)) compiled.set(ptr, ajv.compile({ $ref: `${kDoc}#${ptr}` }));
    return compiled.get(ptr);
};
const errorsOf = (validate) =>
    ajv.errorsText(validate.errors, { separator: "; ", dataVar: "body" });

for (const s of samples) {
    const name = `${s.name} (${s.method.toUpperCase()} ${s.path} -> ${s.status})`;
    const op = doc.paths?.[s.path]?.[s.method];
    if (!op) { fail(name, "no such operation in the document"); continue; }
    const key = op.responses?.[String(s.status)] ? String(s.status) : "default";
    const response = resolve(op.responses?.[key]);
    if (!response) { fail(name, `status ${s.status} is not documented (and no default)`); continue; }
    const responsePtr = op.responses[key].$ref
        ? op.responses[key].$ref.slice(1)
        : pointer("paths", s.path, s.method, "responses", key);
    const media = (s.contentType || "").split(";")[0].trim().toLowerCase();
    if (!response.content) {
        if (s.body) fail(name, `a body of ${media} where the document says none`);
        else ok(name);
        continue;
    }
    if (!response.content[media]) {
        fail(name, `content type "${media}" is not documented (documented: ${Object.keys(response.content).join(", ")})`);
        continue;
    }
    const mediaPtr = `${responsePtr}${pointer("content", media)}`;
    if (media === "application/json") {
        let body;
        try { body = JSON.parse(s.body); } catch (e) { fail(name, `body is not JSON: ${e.message}`); continue; }
        const validate = validatorAt(`${mediaPtr}/schema`);
        if (validate(body)) ok(name);
        else fail(name, `${errorsOf(validate)}\n     body: ${s.body.slice(0, 400)}`);
    } else if (media === "application/x-ndjson") {
        const lineSchema = response.content[media]["x-ndjson-line-schema"];
        if (!lineSchema) { fail(name, "no x-ndjson-line-schema for the NDJSON lines"); continue; }
        const validate = validatorAt(`${mediaPtr}/x-ndjson-line-schema`);
        const summary = validatorAt("/components/schemas/BulkSummaryLine");
        const lines = s.body.split("\n").filter((l) => l.length > 0);
        const bad = [];
        lines.forEach((line, i) => {
            let value;
            try { value = JSON.parse(line); } catch { bad.push(`line ${i + 1} is not JSON`); return; }
            if (!validate(value)) bad.push(`line ${i + 1}: ${errorsOf(validate)}`);
        });
        if (lines.length === 0 || !summary(JSON.parse(lines[lines.length - 1] || "null")))
            bad.push("the last line is not the summary");
        if (bad.length === 0) ok(`${name}, ${lines.length} lines`);
        else fail(name, bad.join("; "));
    } else {
        ok(name); // an image, a page or a redirect: status and content type are documented
    }
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
