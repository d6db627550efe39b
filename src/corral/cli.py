"""The ``corral`` command: parse arguments, call the library, print.

Exit codes: 0 success; 1 a check found something (reserved for verify,
lint, diff); 2 the input or the request is wrong (with a located message,
never a traceback); 3 an internal error (a bug in corral).
"""

from __future__ import annotations

import sys
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time on `corral run`'s path
    import argparse
    from collections.abc import Sequence
    from typing import Any

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _parser() -> "argparse.ArgumentParser":
    import argparse

    from .backends import BACKENDS

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            self.print_usage(sys.stderr)
            print(f"{self.prog}: error: {message}", file=sys.stderr)
            raise SystemExit(EXIT_USAGE)

    from . import __version__

    targets = "\n".join(f"  {t.name:13} {t.summary}" for t in BACKENDS.values())
    p = _Parser(
        prog="corral",
        description=f"Compile one readable security policy to {len(BACKENDS)} targets, run programs confined by it, learn it, and prove it holds.",
        epilog=f"targets (corral compile -t):\n{targets}\n\n`corral VERB --help` describes each verb; `corral run --help` the confined runner.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"corral {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("check", help="validate a policy; errors name file:line:col")
    c.add_argument("policy")
    c.add_argument("--ir", action="store_true", help="print the lowered rules as JSON")
    c.add_argument("--json", action="store_true", help="print the result (rule counts and coverage by every target, or the errors) as JSON")

    c = sub.add_parser(
        "compile",
        help=f"write the artifacts of the {len(BACKENDS)} targets: {', '.join(BACKENDS)}",
        epilog=f"targets:\n{targets}\n\nWith every target (the default), a restriction no target enforces is an error.\n"
        "With targets named by -t, their gaps are a warning on stderr (--strict makes them an error).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("policy")
    c.add_argument("-t", "--target", action="append", choices=list(BACKENDS), metavar="TARGET", help="a target (repeatable): " + ", ".join(BACKENDS) + "; default: all")
    c.add_argument("-o", "--output", default=".", help="directory to write into, or - for stdout (one target)")
    c.add_argument("--force", action="store_true", help="replace existing files with other content")
    gaps = c.add_mutually_exclusive_group()
    gaps.add_argument("--allow-unenforced", action="store_true", help="compile even if a restriction is enforced by no selected target")
    gaps.add_argument("--strict", action="store_true", help="with -t: a restriction the named targets do not enforce is an error, not a warning")
    c.add_argument("--arch", choices=["x86_64", "aarch64"], help="architecture of the bpf target (default: this machine's)")
    c.add_argument("-v", "--verbose", action="store_true", help="list every approximation and gap in the coverage report")
    c.add_argument("--json", action="store_true", help="print the coverage report as JSON (on stderr with -o -)")

    sub.add_parser("run", help="run a command confined by a policy, without root (corral run --help)", add_help=False)
    c = sub.add_parser("trace", help="run a command under strace and write the policy it needs")
    c.add_argument("-o", "--output", help="policy file to write (default: stdout)")
    c.add_argument("--base", help="a policy to start from: only what it lacks is added")
    c.add_argument("--force", action="store_true", help="replace an existing output file")
    c.add_argument("cmd", nargs=argparse.REMAINDER, help="the command (after --)")

    c = sub.add_parser("learn", help="turn AppArmor/seccomp/Landlock audit logs, `corral run --log-to` records or strace output into policy additions")
    c.add_argument("logs", nargs="+", help="log files (- for stdin)")
    c.add_argument("--into", help="merge the additions into this policy (never removing anything; created if missing)")
    c.add_argument("--profile", help="only the events of this AppArmor profile (or corral policy, for a run record)")
    c.add_argument("--dry-run", action="store_true", help="print the change, write nothing")

    c = sub.add_parser("lint", help="find risky rules in corral policies and AppArmor profiles")
    c.add_argument("files", nargs="*")
    c.add_argument("--json", action="store_true", help="print findings as JSON")
    c.add_argument("--severity", choices=["info", "warning", "error"], default="warning", help="exit 1 when a finding is at least this severe (default: warning)")
    c.add_argument("--explain", metavar="CODE", help="print a rule's documentation")
    c.add_argument("--markdown", action="store_true", help="print every rule's documentation (docs/lint-rules.md)")
    c.add_argument("--search", action="append", help="AppArmor include directory (default: /etc/apparmor.d)")
    c.add_argument("--included", action="store_true", help="also report findings in included abstractions")

    c = sub.add_parser("explain", help="what a policy or profile allows, in plain words, with an exposure score")
    c.add_argument("file")
    c.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    c.add_argument("--profile", help="which profile of an AppArmor file (default: every one)")

    c = sub.add_parser("diff", help="the permission delta between two policies or profiles; exit 1 if NEW grants more")
    c.add_argument("old")
    c.add_argument("new")
    c.add_argument("--json", action="store_true")
    c.add_argument("--old-profile", help="profile to take from OLD (AppArmor files with several)")
    c.add_argument("--new-profile", help="profile to take from NEW")

    c = sub.add_parser("import", help="turn a bane profile, an OCI/Docker seccomp JSON or an AppArmor profile into a corral policy")
    c.add_argument("format", choices=["bane", "docker-seccomp", "apparmor"])
    c.add_argument("file")
    c.add_argument("-o", "--output", help="policy file to write (default: stdout)")
    c.add_argument("--force", action="store_true", help="replace an existing output file")
    c.add_argument("--profile", help="which profile of an AppArmor file")

    for verb, what in (("install", "write an AppArmor profile into the profile directory and load it, atomically"), ("uninstall", "unload and remove an installed profile")):
        c = sub.add_parser(verb, help=what)
        c.add_argument("policy" if verb == "install" else "name")
        c.add_argument("--dir", default="/etc/apparmor.d", help="the profile directory (default: /etc/apparmor.d)")
        c.add_argument("--dry-run", action="store_true", help="print every file and command, change nothing")
        c.add_argument("--write-only", action="store_true", help="write or remove the file without (un)loading it")
        c.add_argument("--seccomp-to", metavar="docker|kubelet|DIR", help="also write (or remove) the seccomp JSON there")
        if verb == "install":
            c.add_argument("--complain", action="store_true", help="install in complain mode (log, do not deny): the learning loop")

    c = sub.add_parser("resolve", help="print nft commands that fill the nftables target's name sets with the names' current addresses")
    c.add_argument("policy")
    c = sub.add_parser("schema", help="print the JSON Schema of the policy language (for editors)")

    c = sub.add_parser("verify", help="compile every backend and run the policy's [[Test]] entries under real enforcement")
    c.add_argument("policy")
    c.add_argument("--json", action="store_true", help="print the results as JSON")
    c = sub.add_parser("errors", help="list the error codes, or explain one (what, why, example, fix)")
    c.add_argument("code", nargs="?")
    c.add_argument("--markdown", action="store_true", help="print every code's entry as Markdown (docs/errors.md)")
    c = sub.add_parser("flags", help="list the flag catalogue, or show one flag")
    c.add_argument("name", nargs="?")
    c.add_argument("--markdown", action="store_true", help="print the catalogue as Markdown (docs/flags.md)")
    c.add_argument("--language", action="store_true", help="print the policy language reference (docs/policy-language.md)")
    return p


def main(argv: "Sequence[str] | None" = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:  # the start-up path of confined commands: no argparse
        from .sandbox.runner import main as run_main

        return run_main(argv[1:])
    from .errors import CorralError, InternalError, PolicyError

    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            return _check(args.policy, args.ir, args.json)
        if args.command == "compile":
            return _compile(args)
        if args.command == "errors":
            from .docs import error_detail, errors_markdown, errors_table

            print(errors_markdown() if args.markdown else error_detail(args.code) if args.code else errors_table(), end="\n" if not args.markdown else "")
            return EXIT_OK
        if args.command == "flags":
            return _flags(args.name, args.markdown, args.language)
        if args.command == "verify":
            return _verify(args.policy, args.json)
        if args.command == "lint":
            return _lint(args.files, args.json, args.severity, args.explain, args.markdown, tuple(args.search or ("/etc/apparmor.d",)), args.included)
        if args.command in ("install", "uninstall"):
            from . import install as installing

            if args.command == "install":
                plan = installing.install(args.policy, args.dir, dry_run=args.dry_run, complain=args.complain, write_only=args.write_only, seccomp_to=args.seccomp_to)
            else:
                plan = installing.uninstall(args.name, args.dir, dry_run=args.dry_run, write_only=args.write_only, seccomp_to=args.seccomp_to)
            for note in plan.notes:
                print(f"corral {args.command}: note: {note}", file=sys.stderr)
            if plan.steps:
                print("\n".join(("would " if args.dry_run else "") + s for s in plan.steps))
            return EXIT_OK
        if args.command == "resolve":
            from .backends.nftables import resolve_script
            from .lower import lower
            from .policy import load_policy

            sys.stdout.write(resolve_script(lower(load_policy(args.policy))))
            return EXIT_OK
        if args.command == "schema":
            from .policy.jsonschema import schema_text

            sys.stdout.write(schema_text())
            return EXIT_OK
        if args.command == "import":
            return _import(args.format, args.file, args.output, args.force, args.profile)
        if args.command == "explain":
            return _explain(args.file, args.json, args.profile)
        if args.command == "diff":
            return _diff(args.old, args.new, args.json, args.old_profile, args.new_profile)
        if args.command == "learn":
            from .learn.merge import main as learn_main

            return learn_main(args.logs, args.into, args.dry_run, args.profile)
        if args.command == "trace":
            from .learn.trace import main as trace_main

            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            return trace_main(args.output, args.base, args.force, cmd)
    except PolicyError as exc:
        if getattr(args, "json", False) and args.command == "check":
            import json

            print(json.dumps({"ok": False, "errors": [_diagnostic_json(d) for d in exc.diagnostics]}, indent=2))
        else:
            print(exc.render(args.command), file=sys.stderr)
        return EXIT_USAGE
    except InternalError as exc:
        print(exc.render(args.command), file=sys.stderr)
        return EXIT_INTERNAL
    except CorralError as exc:  # the only place errors are rendered
        print(exc.render(args.command), file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    raise AssertionError(args.command)


def _diagnostic_json(d: "Any") -> dict[str, object]:
    return {"file": d.span.file, "line": d.span.line, "col": d.span.col, "code": d.code, "severity": d.severity, "message": d.message, "hint": d.hint}


def _check(path: str, show_ir: bool, as_json: bool = False) -> int:
    from .lower import lower
    from .policy import load_policy

    ir = lower(load_policy(path))
    if show_ir:
        print(ir.to_json())
        return EXIT_OK
    from .startup import warning

    unstartable = warning(ir, path)
    if unstartable:
        print(unstartable.render(), file=sys.stderr)
    counts = {"file": len(ir.files), "socket": len(ir.sockets), "port": len(ir.ports), "socket-option": len(ir.socket_options), "syscall": len(ir.syscalls), "capability": len(ir.capabilities)}
    if as_json:
        import json

        from .backends import BACKENDS
        from .compile import CompileResult, coverage_of

        report = CompileResult(ir, list(BACKENDS), {}, coverage_of(ir, list(BACKENDS))).report()
        print(json.dumps({"ok": True, "policy": path, "name": ir.name, "rules": counts, "coverage": report}, indent=2))
        return EXIT_OK
    words = [f"{n} {k}" for k, n in counts.items()]
    print(f"{path}: ok: policy '{ir.name}': {', '.join(words[:-1])} and {words[-1]} rules")
    return EXIT_OK


def _compile(args: "argparse.Namespace") -> int:
    from .backends import BACKENDS
    from .compile import compile_ir, gap_message
    from .errors import CorralError
    from .fsutil import write_all
    from .lower import lower
    from .policy import load_policy

    output, verbose = args.output, args.verbose
    selected = list(dict.fromkeys(args.target or BACKENDS))
    if output == "-" and len(selected) != 1:
        raise CorralError("-o - prints one target", code="C002", hint="choose it with -t (for example -t apparmor)")
    ir = lower(load_policy(args.policy))
    # Named targets are a choice: their gaps are a warning unless --strict.
    # Every target (the default) stays fail-closed.
    named = bool(args.target) and not args.strict
    result = compile_ir(ir, selected, allow_unenforced=args.allow_unenforced or named)
    if named and result.unenforced and not args.allow_unenforced:
        warning = CorralError(gap_message(result), code="C001", hint="--strict makes this an error; more targets (-t) close the gap", span=ir.source)
        print(warning.render("compile", severity="warning"), file=sys.stderr)
    if args.arch and "bpf" in selected:
        from .backends.seccomp import emit_bpf

        result.outputs["bpf"] = emit_bpf(ir, args.arch)
    report = result.summary(verbose)
    if args.json:
        import json

        report = json.dumps(result.report(), indent=2)
    if output == "-":
        out = result.outputs[selected[0]]
        if out.binary and sys.stdout.isatty():
            raise CorralError("refusing to print binary BPF to a terminal", code="C003", hint="redirect it to a file")
        sys.stdout.buffer.write(out.content)
        sys.stdout.flush()
        print(report, file=sys.stderr)
        return EXIT_OK
    from pathlib import Path

    directory = Path(output)
    if directory.exists() and not directory.is_dir():
        raise CorralError("-o names a directory to write into, and this is not one", code="C005", hint="-o DIR, or -o - with one target for standard output", span=output)
    files = [(directory / f"{ir.name}{BACKENDS[name].suffix}", result.outputs[name].content) for name in result.targets]
    for (target, _), state in zip(files, write_all(files, force=args.force)):  # all or nothing
        print(f"{state:9} {target}", file=sys.stderr if args.json else sys.stdout)
    print(report)
    return EXIT_OK


def _pick(path: str, profile: str | None) -> "list":  # type: ignore[type-arg]
    from .analyze.view import views_of
    from .errors import CorralError

    views, _ = views_of(path)
    if profile:
        views = [v for v in views if v.name == profile]
    if not views:
        raise CorralError("no profile" + (f" named {profile!r}" if profile else "") + " in this file", code="A006", hint="--profile NAME picks one of the file's profiles", span=path)
    return views


def _import(fmt: str, path: str, output: str | None, force: bool, profile: str | None) -> int:
    from pathlib import Path

    from .analyze.importers import import_file
    from .fsutil import write_atomic
    from .policy import load_policy_text

    text, imported = import_file(fmt, path, profile)
    base_dir = Path(output).resolve().parent if output else None
    load_policy_text(text, output or "<import>", base_dir=base_dir)  # what we write must load
    if output:
        state = write_atomic(Path(output), text.encode(), force=force)
        print(f"{state:9} {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    print(f"corral import: {len(imported.report)} thing(s) did not map" + "".join(f"\n  - {r}" for r in imported.report), file=sys.stderr)
    return EXIT_OK


def _explain(path: str, as_json: bool, profile: str | None) -> int:
    from .analyze.explain import markdown, summary

    views = _pick(path, profile)
    if as_json:
        import json

        print(json.dumps([summary(v) for v in views] if len(views) > 1 else summary(views[0]), indent=2))
    else:
        print("\n".join(markdown(v) for v in views), end="")
    return EXIT_OK


def _diff(old: str, new: str, as_json: bool, old_profile: str | None, new_profile: str | None) -> int:
    from .analyze.diff import diff

    delta = diff(_pick(old, old_profile)[0], _pick(new, new_profile)[0])
    print(delta.to_json() if as_json else delta.text(old, new))
    return EXIT_FINDINGS if delta.widens else EXIT_OK


def _lint(files: list[str], as_json: bool, severity: str, code: str | None, markdown: bool, search: tuple[str, ...], included: bool = False) -> int:
    """`corral lint FILE...`: findings as `file:line:col: CODE message`, or JSON."""
    from .analyze.lint import RULES, SEVERITIES, explain, lint_view, rules_markdown
    from .analyze.view import views_of
    from .errors import CorralError

    if markdown:
        sys.stdout.write(rules_markdown())
        return EXIT_OK
    if code:
        if code.upper() not in RULES:
            raise CorralError(f"unknown rule {code!r}", code="A001", hint=f"rules are {', '.join(RULES)}")
        sys.stdout.write(explain(code))
        return EXIT_OK
    if not files:
        raise CorralError("name at least one policy (.toml) or AppArmor profile", code="A002", hint="corral lint examples/agent-http2.toml")
    findings = []
    for path in files:
        try:
            views, diagnostics = views_of(path, search)
        except OSError as exc:
            raise CorralError(f"cannot read: {exc.strerror}", code="F001", hint="check the path and its permissions", span=path) from None
        findings += diagnostics
        for view in views:
            # rules that live in included abstractions are their authors' to fix
            findings += [d for d in lint_view(view) if included or d.span.file == path]
    findings.sort(key=lambda d: (d.span.file, d.span.line, d.span.col, d.code))
    threshold = SEVERITIES.index(severity)
    if as_json:
        import json

        print(json.dumps([{"file": d.span.file, "line": d.span.line, "col": d.span.col, "code": d.code, "severity": d.severity, "message": d.message, "fix": d.hint} for d in findings], indent=2))
    else:
        for d in findings:
            print(f"{d.span}: {d.code} {d.message}" + (f" [{d.severity}]" if d.severity != "error" else ""))
        counts = {s: sum(1 for d in findings if d.severity == s) for s in SEVERITIES}
        print(f"{len(findings)} finding(s): " + ", ".join(f"{n} {s}" for s, n in reversed(counts.items()) if n) if findings else "no findings", file=sys.stderr)
    return EXIT_FINDINGS if any(SEVERITIES.index(d.severity) >= threshold for d in findings if d.severity in SEVERITIES) else EXIT_OK


def _verify(path: str, as_json: bool) -> int:
    from .verify import verify

    result = verify(path)
    print(result.to_json() if as_json else result.table())
    return EXIT_FINDINGS if result.failed else EXIT_OK


def _flags(name: str | None, markdown: bool, language: bool = False) -> int:
    from .docs import flag_detail, flags_markdown, flags_table, language_markdown

    if language:
        print(language_markdown(), end="")
    elif markdown:
        print(flags_markdown(), end="")
    elif name:
        print(flag_detail(name))
    else:
        print(flags_table())
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
