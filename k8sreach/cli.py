"""The `k8sreach` command line. Heavy libraries load only inside the command that needs them."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from k8sreach import __version__
from k8sreach.errors import ToolError, UserError

LOG = logging.getLogger("k8sreach")


class _OneLineError(click.ClickException):
    exit_code = 2


def _setup_logging(verbose: bool, debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("k8sreach: %(name)s: %(message)s"))
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
@click.argument("target")
@click.option("-n", "--namespace", help="Namespace of the Service (default: 'default').")
@click.option("-p", "--port", help="Port to probe, a number or a port name.")
@click.option("--cluster-domain", help="Cluster DNS domain.  [default: cluster.local]")
@click.option(
    "--dns", "dns", metavar="SERVER[:PORT]", help="DNS server to ask (default: the system's)."
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
    "-o",
    "--output",
    type=click.Choice(["table", "json"]),
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
    """Walk the path from this client to TARGET (NAME.NAMESPACE[:PORT]) and diagnose it."""
    from k8sreach import config, plugins, runner
    from k8sreach.report import render_json, render_table
    from k8sreach.target import parse_port, parse_target

    _setup_logging(verbose, debug)
    flags["context"] = flags.pop("kube_context")
    profile_values = config.load_profile(Path(config_file) if config_file else None, profile)
    parsed = _parse_flags(flags)
    settings = config.build_settings(profile_values, parsed)
    cli_port = parsed.get("port")
    tgt = parse_target(
        target,
        namespace=settings.namespace,
        port=parse_port(str(cli_port)) if cli_port is not None else settings.port,
        cluster_domain=settings.cluster_domain,
    )
    loaded = plugins.load()
    for err in loaded.errors:
        LOG.warning("%s", err)
    report = runner.run([cls() for cls in loaded.checks], settings, tgt, loaded.errors)
    click.echo(
        render_json(report) if output == "json" else render_table(report), nl=output == "json"
    )
    sys.exit(report.exit_code)


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
            out[key] = config._PARSERS[key](list(value) if isinstance(value, tuple) else value)
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


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line per error, exit 2 for usage, 3 for the tool's own failure."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="k8sreach", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("k8sreach: interrupted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        where = f"k8sreach {exc.ctx.info_name}" if exc.ctx and exc.ctx.parent else "k8sreach"
        click.echo(f"k8sreach: error: {exc.format_message()} (see '{where} --help')", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"k8sreach: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except (UserError, ToolError) as exc:
        if debug:
            raise
        click.echo(f"k8sreach: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("k8sreach: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"k8sreach: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the "
            "traceback, and report it)",
            err=True,
        )
        sys.exit(3)
