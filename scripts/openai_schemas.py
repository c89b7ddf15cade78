#!/usr/bin/env python3
"""Extract the OpenAI wire schemas Harpoon is checked against (issue 16).

Reads the official OpenAI OpenAPI document (github.com/openai/openai-openapi,
file `openapi.yaml`), takes a fixed list of component schemas, resolves every
`$ref` into a self-contained JSON Schema (Draft 2020-12) per schema, and writes
`tests/fixtures/openai-schemas.json`:

    {"source": "openai/openai-openapi@<full commit>/<path>",
     "schemas": {Name: {"$schema": ..., ..., "$defs": {...}}}}

The fixture is committed; tests read it (tests/openai_schema.py) and never the
document itself.  Regenerate it with (commit f85dbe2 is the one issue 16 names):

    git clone https://github.com/openai/openai-openapi /tmp/openai-openapi
    git -C /tmp/openai-openapi show f85dbe223d40e1a31cba812ab2d755c7e98a92a3:openapi.yaml \\
        > /tmp/openapi.yaml
    .venv/bin/python scripts/openai_schemas.py /tmp/openapi.yaml \\
        --commit f85dbe223d40e1a31cba812ab2d755c7e98a92a3

(at that commit the git blob of openapi.yaml is cc54f3a8e4c6737bd945051cd6654e0a20913743.)

Conversion rules, so that the JSON Schema accepts exactly what the document says:

* `$ref: '#/components/schemas/Name'` becomes `$ref: '#/$defs/Name'`; only the
  schemas reachable from each root are put in its `$defs`.
* The document says `openapi: 3.1.0`, but still carries OpenAPI 3.0 idioms,
  which are translated:
  - `nullable: true` on a plain `type` makes the type a union with "null"
    (and adds `null` to an `enum`); on a `$ref`/`anyOf`/`oneOf`/`allOf` the
    schema is wrapped as `anyOf: [schema, {type: "null"}]`;
  - `allOf: [X, {nullable: true}]` means "X or null";
  - boolean `exclusiveMinimum`/`exclusiveMaximum` with `minimum`/`maximum`
    become the numeric 2020-12 form;
  - `nullable: false` is dropped;
  - 2019-09's `$recursiveRef: "#"` (under `$recursiveAnchor: true`) becomes a
    `$ref` to the component itself, and the anchor is dropped.
* Annotations that do not change what validates are dropped to keep the fixture
  small: description, title, example(s), externalDocs, discriminator (OpenAPI's
  hint; the oneOf it annotates still decides), deprecated, default, readOnly,
  writeOnly, xml and every `x-*` extension.  `format` is kept (jsonschema only
  asserts it when a format checker is asked for).

PyYAML (pinned in python/requirements.lock) reads the document, with YAML's
timestamp rule turned off so that dates stay strings, as they are in JSON.
"""

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOTS = [
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "ListModelsResponse",
    "Model",
    "ErrorResponse",
    "CreateChatCompletionRequest",
    "CreateCompletionResponse",
    "CreateEmbeddingResponse",
    "Response",
    "ResponseStreamEvent",
]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
REF_PREFIX = "#/components/schemas/"

# Keywords whose value is a map of name -> schema.
SCHEMA_MAPS = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
# Keywords whose value is one schema.
SCHEMA_ONE = {
    "items", "additionalProperties", "not", "if", "then", "else", "contains",
    "propertyNames", "unevaluatedItems", "unevaluatedProperties", "additionalItems",
}
# Keywords whose value is a list of schemas.
SCHEMA_LISTS = {"allOf", "anyOf", "oneOf", "prefixItems"}
# Annotation-only keywords (and every x-*), dropped.
ANNOTATIONS = {
    "description", "title", "example", "examples", "externalDocs", "discriminator",
    "deprecated", "default", "readOnly", "writeOnly", "xml", "$comment",
}
COMPOSITE = {"$ref", "allOf", "anyOf", "oneOf", "not", "const"}


def load_document(path):
    """yaml.safe_load, but dates stay strings (as JSON would have them)."""
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # noqa: D401 - local subclass
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=Loader)


def is_nullable_marker(node):
    """`{nullable: true}` with nothing but annotations: OpenAPI 3.0's "or null"
    member of an allOf."""
    if not isinstance(node, dict) or "nullable" not in node:
        return False
    rest = [k for k in node if k != "nullable" and k not in ANNOTATIONS and not k.startswith("x-")]
    return not rest


def make_nullable(schema):
    if not isinstance(schema, dict):
        return schema
    if "type" in schema and not (COMPOSITE & schema.keys()):
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if "null" not in types:
            schema["type"] = types + ["null"]
        if "enum" in schema and None not in schema["enum"]:
            schema["enum"] = list(schema["enum"]) + [None]
        return schema
    if not (COMPOSITE & schema.keys()) and "enum" not in schema:
        return schema  # no type constraint: null already passes
    return {"anyOf": [schema, {"type": "null"}]}


class Converter:
    def __init__(self, components):
        self.components = components
        self.cache = {}

    def component(self, name):
        if name not in self.cache:
            if name not in self.components:
                raise KeyError(f"$ref to missing component schema {name!r}")
            self.cache[name] = None  # cycle guard
            refs = set()
            self.current = name
            self.cache[name] = (self.convert(self.components[name], refs), refs)
        return self.cache[name]

    def convert(self, node, refs):
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            raise TypeError(f"not a schema: {node!r}")
        nullable = node.get("nullable") is True
        members = node.get("allOf")
        if isinstance(members, list) and any(is_nullable_marker(m) for m in members):
            nullable = nullable or any(
                is_nullable_marker(m) and m["nullable"] is True for m in members
            )
            node = {**node, "allOf": [m for m in members if not is_nullable_marker(m)]}
            if not node["allOf"]:
                del node["allOf"]
        out = {}
        for key, value in node.items():
            if key == "nullable" or key in ANNOTATIONS or key.startswith("x-"):
                continue
            if key == "$recursiveAnchor":
                continue  # 2019-09's self-reference marker; see $recursiveRef
            if key == "$recursiveRef":
                # `$recursiveRef: "#"` under `$recursiveAnchor: true` means the
                # component itself (2019-09, not in 2020-12).
                if value != "#":
                    raise ValueError(f"unsupported $recursiveRef {value!r}")
                refs.add(self.current)
                out["$ref"] = "#/$defs/" + self.current
                continue
            if key == "$ref":
                if not value.startswith(REF_PREFIX):
                    raise ValueError(f"unsupported $ref {value!r}")
                name = value[len(REF_PREFIX):]
                refs.add(name)
                out[key] = "#/$defs/" + name
            elif key in SCHEMA_MAPS:
                out[key] = {k: self.convert(v, refs) for k, v in value.items()}
            elif key in SCHEMA_ONE:
                if isinstance(value, list):
                    out[key] = [self.convert(v, refs) for v in value]
                else:
                    out[key] = self.convert(value, refs)
            elif key in SCHEMA_LISTS:
                out[key] = [self.convert(v, refs) for v in value]
            else:
                out[key] = value
        for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(out.get(exclusive), bool):
                if out.pop(exclusive) and bound in out:
                    out[exclusive] = out.pop(bound)
        if len(out.get("allOf", ())) == 1 and len(out) == 1:
            out = out["allOf"][0]  # `allOf: [X]` left from `allOf: [X, {nullable}]`
        if nullable:
            out = make_nullable(out)
        return out

    def root(self, name):
        schema, refs = self.component(name)
        seen, todo = set(), list(refs)
        while todo:
            ref = todo.pop()
            if ref in seen:
                continue
            seen.add(ref)
            todo.extend(self.component(ref)[1])
        result = {"$schema": DIALECT, **schema}
        if seen:
            result["$defs"] = {ref: self.component(ref)[0] for ref in sorted(seen)}
        return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help="path to openapi.yaml")
    parser.add_argument("--commit", required=True,
                        help="full 40-hex commit of openai/openai-openapi the file is from")
    parser.add_argument("--doc-path", default="openapi.yaml",
                        help="the file's path inside that repository (default openapi.yaml)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1]
                                             / "tests" / "fixtures" / "openai-schemas.json"))
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[0-9a-f]{40}", args.commit):
        parser.error("--commit must be the full 40-hex commit id")

    doc = load_document(args.spec)
    components = doc["components"]["schemas"]
    converter = Converter(components)
    fixture = {
        "source": f"openai/openai-openapi@{args.commit}/{args.doc_path}",
        "schemas": {name: converter.root(name) for name in ROOTS},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(fixture, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size} bytes, {len(ROOTS)} schemas)", file=sys.stderr)


if __name__ == "__main__":
    main()
