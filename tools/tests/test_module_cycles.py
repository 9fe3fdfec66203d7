"""Tests of tools/module_cycles.py on small crates written to a temporary workspace."""

from __future__ import annotations

import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

import module_cycles as mc


def write_crate(workspace: Path, name: str, files: dict[str, str]) -> Path:
    src = workspace / "crates" / name / "src"
    for rel, text in files.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return src


def run(workspace: Path, capsys, *args: str) -> tuple[int, str]:
    code = mc.main([*args, str(workspace)])
    return code, capsys.readouterr().out


def test_siblings_that_use_each_other_are_a_cycle(tmp_path, capsys):
    write_crate(
        tmp_path,
        "demo",
        {
            "lib.rs": "mod a;\nmod b;\nmod c;\n",
            "a.rs": "use crate::b::Thing;\npub fn f() {}\n",
            "b.rs": "pub struct Thing;\nfn g() { crate::a::f(); }\n",
            "c.rs": "use crate::a::f;\n",
        },
    )
    code, out = run(tmp_path, capsys)
    assert code == 1
    assert "crates/demo/src/lib.rs: 1 module cycle\n" in out
    assert "  a -> b -> a\n" in out
    assert "    a -> b: a.rs:1 use crate::b::Thing\n" in out
    assert "    b -> a: b.rs:2 crate::a::f\n" in out
    assert "-> c" not in out and "c ->" not in out


def test_an_acyclic_crate_prints_nothing(tmp_path, capsys):
    write_crate(
        tmp_path,
        "calm",
        {
            "lib.rs": "mod error;\nmod hash;\nmod pack;\npub use error::Error;\n",
            # Through the root's re-export: a reference to `error`, not to the root.
            "pack.rs": "use crate::Error;\nuse crate::hash::sha256;\n",
            "hash.rs": "pub fn sha256() {}\n",
            "error.rs": "pub struct Error;\n",
        },
    )
    assert run(tmp_path, capsys) == (0, "")


def test_a_child_using_its_parent_is_no_cycle_but_its_siblings_are(tmp_path, capsys):
    write_crate(
        tmp_path,
        "nest",
        {
            "lib.rs": "mod console;\n",
            "console/mod.rs": (
                "mod session;\n"
                "mod i18n;\n"
                "pub use session::Operator;\n"  # a re-export alone is no edge
                "pub fn not_found() {}\n"
                "fn route() { session::sign_in(); }\n"
            ),
            # The parent's own items are the namespace its children live in.
            "console/session.rs": (
                "use super::i18n::Lang;\n"
                "pub struct Operator;\npub fn sign_in() { super::not_found(); }\n"
            ),
            "console/i18n.rs": "pub struct Lang;\nfn cookie() { super::session::sign_in(); }\n",
        },
    )
    code, out = run(tmp_path, capsys)
    assert code == 1
    assert "crates/nest/src/lib.rs: 1 module cycle\n" in out
    assert "  console::i18n -> console::session -> console::i18n\n" in out
    assert "super::not_found" not in out
    assert "console -> " not in out


def test_a_parent_only_re_exporting_its_child_is_no_cycle(tmp_path, capsys):
    write_crate(
        tmp_path,
        "facade",
        {
            "lib.rs": "mod check;\npub use check::Request;\n",
            "check/mod.rs": "mod verify;\npub use self::verify::Facts;\npub struct Request;\n",
            "check/verify.rs": "use super::Request;\npub struct Facts;\n",
        },
    )
    assert run(tmp_path, capsys) == (0, "")


def test_references_deep_inside_siblings_count_between_the_siblings(tmp_path, capsys):
    write_crate(
        tmp_path,
        "deep",
        {
            "lib.rs": "mod console;\nmod state;\n",
            "console/mod.rs": "mod pages;\n",
            "console/pages/mod.rs": "mod registry;\n",
            "console/pages/registry.rs": "use crate::state::AppState;\npub struct Jobs;\n",
            "state.rs": "pub struct AppState { jobs: crate::console::pages::registry::Jobs }\n",
        },
    )
    code, out = run(tmp_path, capsys)
    assert code == 1
    assert "  console -> state -> console\n" in out
    assert (
        "    state -> console: state.rs:1 crate::console::pages::registry::Jobs\n"
        in out
    )


def test_comments_strings_and_unit_tests(tmp_path, capsys):
    write_crate(
        tmp_path,
        "quiet",
        {
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": (
                "// crate::b::X in a comment\n"
                "/* and /* nested */ crate::b::X */\n"
                'const S: &str = "crate::b::X";\n'
                'const R: &str = r#"crate::b::X"#;\n'
                "const C: char = '\"';\n"
                "fn f<'a>(x: &'a str) -> &'a str { x }\n"
                "pub struct A;\n"
                "#[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::b::B;\n}\n"
            ),
            "b.rs": "use crate::a::A;\npub struct B;\n",
        },
    )
    code, out = run(tmp_path, capsys)
    # Only the unit test's `use crate::b::B` (line 11) makes a cycle.
    assert code == 1
    assert "    a -> b: a.rs:11 use crate::b::B\n" in out
    assert run(tmp_path, capsys, "--skip-tests") == (0, "")


def test_super_inside_inline_modules_counts_the_inline_levels(tmp_path, capsys):
    write_crate(
        tmp_path,
        "inline",
        {
            "lib.rs": "mod a;\nmod b;\npub fn root() {}\n",
            "a.rs": (
                "mod inner {\n"
                "    fn f() { super::g(); }\n"  # a itself
                "    fn h() { super::super::b::k(); }\n"  # crate::b
                "}\n"
                "fn g() {}\n"
            ),
            "b.rs": "pub fn k() {}\nfn m() { crate::a::g(); }\n",
        },
    )
    code, out = run(tmp_path, capsys)
    assert code == 1
    assert "  a -> b -> a\n" in out
    assert "    a -> b: a.rs:3 super::super::b::k\n" in out


def test_every_elementary_cycle_is_printed_once(tmp_path, capsys):
    write_crate(
        tmp_path,
        "tri",
        {
            "lib.rs": "mod a;\nmod b;\nmod c;\n",
            "a.rs": "use crate::b::B;\nuse crate::c::C;\npub struct A;\n",
            "b.rs": "use crate::a::A;\nuse crate::c::C;\npub struct B;\n",
            "c.rs": "use crate::a::A;\npub struct C;\n",
        },
    )
    code, out = run(tmp_path, capsys)
    assert code == 1
    cycles = [line.strip() for line in out.splitlines() if line.startswith("  a")]
    assert cycles == ["a -> b -> a", "a -> b -> c -> a", "a -> c -> a"]
    assert "3 module cycles" in out


def test_each_crate_root_and_binary_is_its_own_tree(tmp_path, capsys):
    write_crate(
        tmp_path,
        "bin",
        {
            "main.rs": "mod cli;\nmod run;\n",
            "cli.rs": "use crate::run::go;\npub struct Args;\n",
            "run.rs": "use crate::cli::Args;\npub fn go() {}\n",
            "lib.rs": "mod cli;\n",
            "bin/tool.rs": "fn main() {}\n",
        },
    )
    code, out = run(tmp_path, capsys)
    assert code == 1
    assert out.startswith("crates/bin/src/main.rs: 1 module cycle\n")
    assert "lib.rs" not in out and "tool.rs" not in out


def test_a_workspace_without_crates_is_an_error(tmp_path, capsys):
    assert mc.main([str(tmp_path)]) == 2
