"""The `k8sreach` command line. Heavy libraries load only inside the command that needs them."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from k8sreach import __version__
from k8sreach.errors import ToolError, UserError

LOG = logging.getLogger("k8sreach")


def _setup_logging(verbose: bool, debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    level = logging.DEBUG if (verbose or debug) else logging.WARNING
    for name in ("k8sreach", "checks"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def _float(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is None:
        return None
    from k8sreach.config import parse_timeout

    return parse_timeout(value, param.name or "value")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="k8sreach")
def cli() -> None:
    """Reachability diagnostics for Kubernetes Services, from the client to the pod.

    `k8sreach doctor mysql-read.default` walks the path hop by hop (route, DNS, gateway,
    TCP connect) and says what works, what does not, the evidence, and what to do.
    """


@cli.command()
@click.argument("target", required=False)
@click.option("-n", "--namespace", help="Namespace of the Service (default: 'default').")
@click.option("-p", "--port", help="Port to probe, a number or a port name.")
@click.option("--cluster-domain", help="Cluster DNS domain.  [default: cluster.local]")
@click.option(
    "--dns", "dns", metavar="SERVER[:PORT]", help="DNS server to ask (default: the system's)."
)
@click.option(
    "--kube-dns",
    metavar="IP[:PORT]",
    help="kube-dns's ClusterIP, asked directly (default: the 10th address of --service-cidr).",
)
@click.option("--gateway", metavar="IP", help="Expected next hop for the cluster ranges.")
@click.option("--service-cidr", multiple=True, metavar="CIDR", help="Service range (repeatable).")
@click.option("--pod-cidr", multiple=True, metavar="CIDR", help="Pod range (repeatable).")
@click.option(
    "--timeout", callback=_float, metavar="SECONDS", help="Timeout of each probe.  [default: 2]"
)
@click.option(
    "--deadline",
    callback=_float,
    metavar="SECONDS",
    help="Deadline of the whole run.  [default: 3 x timeout + 1]",
)
@click.option("--ssh", metavar="DEST", help="Reach the gateway with ssh DEST (as ssh takes it).")
@click.option("--ssh-identity", metavar="FILE", help="Private key for --ssh.")
@click.option(
    "--ssh-option", multiple=True, metavar="KEY=VALUE", help="ssh -o option (repeatable)."
)
@click.option("--on-gateway", is_flag=True, default=None, help="Run the gateway checks locally.")
@click.option("--bird-socket", metavar="PATH", help="BIRD control socket on the gateway.")
@click.option("--kube-proxy-path", metavar="PATH", help="kube-proxy binary on the gateway.")
@click.option("--kube-proxy-sha256", metavar="HEX", help="Expected sha256 of kube-proxy.")
@click.option(
    "--kube-proxy-reference",
    metavar="DEST[:PATH]",
    help="A node whose kube-proxy is the reference (read over ssh).",
)
@click.option("--kubeconfig", metavar="FILE", help="Kubeconfig for the cluster view.")
@click.option("--context", "kube_context", metavar="NAME", help="Kubeconfig context.")
@click.option(
    "--ingress",
    metavar="NAME",
    help="Diagnose this Ingress (in -n NS): its rule, the controller and the backend.",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json", "markdown"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("--config", "config_file", metavar="FILE", help="TOML file of named profiles.")
@click.option("--profile", metavar="NAME", help="Profile in the config file; flags win over it.")
@click.option("-v", "--verbose", is_flag=True, help="Print every probe and answer to stderr.")
@click.option("--debug", is_flag=True, help="Verbose, and tracebacks for errors.")
def doctor(
    target: str,
    output: str,
    config_file: str | None,
    profile: str | None,
    verbose: bool,
    debug: bool,
    **flags: Any,
) -> None:
    """Walk the path from this client to TARGET and diagnose it.

    TARGET is a Service, NAME.NAMESPACE[:PORT], or a URL such as http://my.example.com/app
    (an Ingress run: the rule, the controller and the backend); --ingress NAME without TARGET
    requests that Ingress's first rule.
    """
    from k8sreach import config, plugins, runner
    from k8sreach.report import render_json, render_table

    _setup_logging(verbose, debug)
    flags["context"] = flags.pop("kube_context")
    ingress = flags.pop("ingress")
    if config_file is not None and not config_file.strip():
        raise UserError("--config needs a file name")
    profile_values = config.load_profile(Path(config_file) if config_file else None, profile)
    parsed = _parse_flags(flags)
    if ingress is not None:
        parsed["ingress"] = ingress
    settings = config.build_settings(profile_values, parsed)
    if settings.deadline is not None and settings.deadline <= settings.timeout:
        raise UserError(
            f"--deadline {settings.deadline:g} must be longer than --timeout "
            f"{settings.timeout:g}: every probe must be able to time out within the run"
        )
    tgt = _target(target, settings, parsed.get("port"))
    # Plugins are third-party code: whatever they print must not land in a JSON or Markdown
    # document on stdout, so stdout points at stderr until the document is written.
    with contextlib.redirect_stdout(sys.stderr):
        loaded = plugins.load()
        for err in loaded.errors:
            LOG.warning("%s", err)
        checks = [cls() for cls in loaded.checks if _applies(cls, tgt, settings)]
        report = runner.run(checks, settings, tgt, loaded.errors)
    if output == "json":
        click.echo(render_json(report))
    elif output == "markdown":
        from k8sreach.markdown import render_markdown

        click.echo(render_markdown(report), nl=False)
    else:
        click.echo(render_table(report), nl=False)
    sys.exit(report.exit_code)


def _target(text: str | None, settings: Any, cli_port: Any) -> Any:
    """Return the Target: a Service, or an Ingress run for a URL or --ingress."""
    from k8sreach.target import TargetError, parse_ingress_target, parse_port, parse_target

    if text is None and settings.ingress is None:
        raise click.UsageError(
            "give a TARGET (NAME.NAMESPACE[:PORT] or a URL such as http://my.example.com/app) "
            "or --ingress NAME"
        )
    if settings.ingress is not None or (text is not None and "://" in text):
        if text is not None and "://" not in text:
            raise TargetError(
                f"with --ingress, TARGET is the URL to request, not '{text}'; give "
                "http://HOST/PATH or leave TARGET out"
            )
        if cli_port is not None:
            raise TargetError("an Ingress run takes its port from the URL; leave out -p")
        return parse_ingress_target(
            text,
            ingress=settings.ingress,
            namespace=settings.namespace,
            cluster_domain=settings.cluster_domain,
        )
    assert text is not None
    return parse_target(
        text,
        namespace=settings.namespace,
        port=parse_port(str(cli_port)) if cli_port is not None else settings.port,
        cluster_domain=settings.cluster_domain,
    )


def _applies(cls: Any, target: Any, settings: Any) -> bool:
    """Return whether a check belongs in this run's chain.

    Checks may declare `target_kinds` (default ("service",)): the Ingress checks are left out
    of Service runs and the Service checks out of Ingress runs. Checks that declare
    `cluster_view_only` (the NodePort and load-balancer probes: only the API says there is
    something to probe) are left out of runs without a kubeconfig.
    """
    from k8sreach.context import cluster_configured

    if target.kind not in getattr(cls, "target_kinds", ("service",)):
        return False
    return not getattr(cls, "cluster_view_only", False) or cluster_configured(settings)


def _parse_flags(flags: dict[str, Any]) -> dict[str, Any]:
    """Turn raw flag strings into typed settings, with the same rules as the profile file."""
    from k8sreach import config

    out: dict[str, Any] = {}
    for key, value in flags.items():
        if value is None or value == ():
            continue
        if key in ("timeout", "deadline"):
            out[key] = value
        elif key == "port":
            from k8sreach.target import parse_port

            out[key] = parse_port(value)
        else:
            try:
                out[key] = config._PARSERS[key](list(value) if isinstance(value, tuple) else value)
            except UserError as exc:
                flag = "--" + key.replace("_", "-")
                raise config.ConfigError(f"{flag}: {exc}") from None
    return out


@cli.command(name="checks")
def list_checks() -> None:
    """List every installed check: id, hop and what it diagnoses."""
    from tabulate import tabulate

    from k8sreach import plugins

    loaded = plugins.load()
    import textwrap

    rows = [
        [c.id, c.hop.value, "\n".join(textwrap.wrap(c.description(), 70))] for c in loaded.checks
    ]
    click.echo(tabulate(rows, headers=["ID", "HOP", "DESCRIPTION"], tablefmt="simple"))
    for err in loaded.errors:
        click.echo(f"warning: {err}", err=True)


@cli.command()
@click.argument("runbook_id", required=False)
@click.option(
    "--os",
    "os_name",
    type=click.Choice(["linux", "macos", "windows"]),
    help="Client OS for the steps (default: this machine's).",
)
def runbook(runbook_id: str | None, os_name: str | None) -> None:
    """List the runbooks, or print one: the steps for a kind of failure."""
    from k8sreach import runbooks

    if runbook_id is None:
        from tabulate import tabulate

        rows = [[e.id, e.check, e.title] for e in runbooks.entries()]
        click.echo(tabulate(rows, headers=["ID", "CHECK", "FAILURE"], tablefmt="simple"))
        return
    entry = runbooks.get(runbook_id)
    if entry is None:
        known = ", ".join(e.id for e in runbooks.entries())
        raise UserError(f"no runbook '{runbook_id}' (runbooks: {known})")
    click.echo(runbooks.render(entry, os_name=os_name), nl=False)


@cli.command()
@click.option("--keep-going", is_flag=True, help="Do not stop at the first unexpected result.")
def demo(keep_going: bool) -> None:
    """Build the network lab (root, Linux), diagnose the healthy path and injected faults."""
    from k8sreach.demo import run_demo

    sys.exit(run_demo(keep_going=keep_going))


_SIGNALLED: list[int] = []


def _interrupt(signum: int, _frame: object) -> None:
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line per error, exit 2 for usage, 3 for the tool's own failure."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    if not args:
        with click.Context(cli, info_name="k8sreach") as ctx:
            click.echo(cli.get_help(ctx))
        sys.exit(0)
    # SIGTERM and SIGHUP end the run like Ctrl-C does, so that cleanup (the SSH master
    # connection and its private directory) runs instead of being orphaned.
    for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is not None:
            signal.signal(signum, _interrupt)
    try:
        cli.main(args=args, prog_name="k8sreach", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("k8sreach: interrupted", err=True)
        sys.exit(128 + (_SIGNALLED[0] if _SIGNALLED else signal.SIGINT))
    except click.UsageError as exc:
        where = f"k8sreach {exc.ctx.info_name}" if exc.ctx and exc.ctx.parent else "k8sreach"
        click.echo(f"k8sreach: error: {exc.format_message()} (see '{where} --help')", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"k8sreach: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except (UserError, ToolError) as exc:
        if debug and isinstance(exc, ToolError):
            traceback.print_exc()
        click.echo(f"k8sreach: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("k8sreach: interrupted", err=True)
        sys.exit(128 + (_SIGNALLED[0] if _SIGNALLED else signal.SIGINT))
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        click.echo(
            f"k8sreach: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the "
            "traceback, and report it)",
            err=True,
        )
        sys.exit(3)
