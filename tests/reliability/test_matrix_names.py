"""Matrix group: model names and revisions (parsing and lookup)."""

from __future__ import annotations

import zoo
from zoo.errors import InputError, UnknownModelError
from zoo.registry import get_registry, parse_model_name

from .matrix import Row, check_row, params


def find(name):
    return lambda env: get_registry().find_card(name)


def parse(name):
    return lambda env: parse_model_name(name)


U = UnknownModelError
ROWS = [
    Row("empty-name", parse(""), U, ("non-empty string",)),
    Row("blank-name", parse("   "), U, ("non-empty string",)),
    Row("none-name", parse(None), U, ("non-empty string",)),
    Row("int-name", parse(5), U, ("non-empty string",)),
    Row("bytes-name", parse(b"flextok"), U, ("non-empty string",)),
    Row("trailing-at", parse("flextok@"), U, ("nothing after '@'",)),
    Row("double-at", parse("flextok@@"), U, ("'@'", "not a revision")),
    Row("at-only", parse("@main"), U, ("not a family name",)),
    Row("leading-dot", parse(".demo_tiny"), U, ("not a family name",)),
    Row("trailing-dot", parse("flextok."), U, ("not a tag",)),
    Row("double-dot", parse("flextok..demo"), U, ("not a tag",)),
    Row("space-in-family", parse("flex tok"), U, ("not a family name",)),
    Row("space-in-tag", parse("flextok.demo tiny"), U, ("not a tag",)),
    Row("newline-in-name", parse("flextok.demo_tiny\n@x"), U, ("malformed",)),
    Row("unicode-family", parse("flextök"), U, ("not a family name",)),
    Row("path-as-name", parse("/tmp/model.safetensors"), U, ("malformed", "family")),
    Row("revision-with-space", parse("flextok@a b"), U, ("not a revision",)),
    Row("revision-dotdot", parse("flextok@../../etc"), U, ("not a revision",)),
    Row("revision-trailing-slash", parse("flextok@refs/pr/"), U, ("not a revision",)),
    Row("hub-empty-repo", parse("hf-hub:"), U, ("not a hub repo id",)),
    Row("hub-no-org", parse("hf-hub:repo"), U, ("not a hub repo id",)),
    Row("hub-three-parts", parse("hf-hub:org/repo/extra"), U, ("not a hub repo id",)),
    Row("hub-trailing-at", parse("hf-hub:org/repo@"), U, ("nothing after '@'",)),
    Row("hub-dotdot", parse("hf-hub:org/.."), U, ("not a hub repo id",)),
    Row("hub-unknown-repo", find("hf-hub:nobody/nothing"), U, ("no card describes hub repo", "nobody/nothing")),
    Row("typo-suggests", find("flextk"), U, ("unknown model", "did you mean", "flextok")),
    Row("unknown-tag-suggests", find("flextok.demo_12"), U, ("did you mean", "flextok.demo_128")),
    Row("kind-typo", lambda env: zoo.list_models(kind="tokenzer"), InputError, ("tokenzer", "tokenizer")),
    Row("list-pattern-none", lambda env: zoo.list_models(None), InputError, ("pattern must be a string", "NoneType")),
    Row("uppercase-resolves", lambda env: get_registry().find_card("FLEXTOK.DEMO_TINY"),
        check=lambda r: r[0].name == "flextok.demo_128" and r[1] is None),
    Row("padded-resolves", lambda env: get_registry().find_card("  flextok.demo_128  "),
        check=lambda r: r[0].name == "flextok.demo_128"),
    Row("revision-kept-verbatim", parse("flextok.demo_tiny@Main-v1.0"),
        check=lambda m: m == ("flextok", "demo_tiny", "Main-v1.0", None)),
    Row("hub-revision-parsed", parse("hf-hub:EPFL-VILAB/flextok_d18_d28_dfn@refs/pr/1"),
        check=lambda m: m.hub_repo == "EPFL-VILAB/flextok_d18_d28_dfn" and m.revision == "refs/pr/1"),
    Row("hub-prefix-uppercase", parse("HF-HUB:EPFL-VILAB/flextok_d18_d28_dfn"),
        check=lambda m: m.hub_repo == "EPFL-VILAB/flextok_d18_d28_dfn" and m.family is None),
    Row("hub-prefix-junk-repo", parse("HF-HUB:${x}bhf-hub:-"), U, ("not a hub repo id",)),
    Row("control-chars-in-family", parse("demo_tiny:\x00\t"), U, ("not a family name",)),
    Row("dots-then-at", parse("..@"), U, ("nothing after '@'",)),
    Row("hub-card-found", find("hf-hub:epfl-vilab/flextok_d18_d28_dfn"),
        check=lambda r: r[0].name == "flextok.d18_d28_dfn"),
]


@params(ROWS)
def test_names(row, env):
    check_row(row, env)
