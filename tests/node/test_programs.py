"""The wrapper modules the node's programs are built in, and their image recipes, without building them."""

from __future__ import annotations

from infrastructure.apiserver.build import (
    GoCommand,
    module_directives,
    module_go_version,
    wrapper_files,
)

GOMOD = """\
module example.com/tool

go 1.23.1

require (
\tk8s.io/api v0.35.0
\texample.com/old v1.0.0 // indirect
)

// KEDA needs the older controller-runtime
exclude example.com/grpc/stats v0.0.0-00010101000000-000000000000

replace sigs.k8s.io/controller-runtime => sigs.k8s.io/controller-runtime v0.22.5 // pinned

replace (
\tk8s.io/api => k8s.io/api v0.34.5
\tk8s.io/code-generator => ./staging/src/k8s.io/code-generator

\texample.com/fork => ../fork
\texample.com/moved => example.com/new v1.0.4
)

exclude (
\texample.com/bad v1.2.3
)
"""


def test_wrapper_repeats_the_modules_replace_and_exclude_lines_but_not_relative_paths():
    assert module_directives(GOMOD) == [
        "exclude example.com/grpc/stats v0.0.0-00010101000000-000000000000",
        "replace sigs.k8s.io/controller-runtime => sigs.k8s.io/controller-runtime v0.22.5",
        "replace k8s.io/api => k8s.io/api v0.34.5",
        "replace example.com/moved => example.com/new v1.0.4",
        "exclude example.com/bad v1.2.3",
    ]
    commands = [GoCommand("cmd/tool"), GoCommand("cmd/agent", "tool-agent", cgo=True, tags=("netgo",))]
    files = wrapper_files("example.com/tool", "v1.2.0", commands, GOMOD)
    gomod = files["go.mod"]
    assert gomod.startswith("module lakehouse.local/build\n\ngo 1.23.1\n\nrequire example.com/tool v1.2.0\n")
    assert "replace k8s.io/api => k8s.io/api v0.34.5\n" in gomod
    assert "exclude example.com/bad v1.2.3\n" in gomod
    assert "./staging" not in gomod and "../fork" not in gomod and "indirect" not in gomod
    assert '_ "example.com/tool/cmd/tool"' in files["tools.go"]
    assert '_ "example.com/tool/cmd/agent"' in files["tools.go"]
    assert files["tools.go"].startswith("//go:build tools\n")
    assert [command.binary for command in commands] == ["tool", "tool-agent"]


def test_wrapper_go_line_is_the_modules_raised_to_go_1_21():
    assert module_go_version("module m\n\ngo 1.13\n") == "1.21"
    assert module_go_version("module m\n\ngo 1.25.8\n") == "1.25.8"
    assert module_go_version("module m\n") == "1.21"
