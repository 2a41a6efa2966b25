"""`heisttrace spark-extract` and `heisttrace ingest parquet`: whole-chain Parquet in, a theft's
neighbourhood out, and back into a workspace for the exact local trace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from heisttrace.cli.common import JsonOpt, WorkspaceOpt, console, err_console, print_json


def spark_extract(
    input: Annotated[list[str], typer.Option("--input", "-i", help="Parquet dataset: a folder "
                                             "with ethereum-etl sub-folders (transactions, "
                                             "token_transfers, traces) or a flows dataset. "
                                             "Repeat for several.")],
    seed: Annotated[list[str], typer.Option("--seed", "-s", help="Theft tx hash or "
                                            "ADDRESS@TIME. Repeat for several.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (flows/ Parquet and "
                                      "manifest.json).")],
    max_hops: Annotated[int | None, typer.Option("--max-hops", help="Stop after this many "
                                                 "rounds (the result is then not exact).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Ignore flows after this time "
                                              "(unix seconds or ISO date).")] = None,
    master: Annotated[str, typer.Option("--master", help="Spark master URL.")] = "local[*]",
    hub_limit: Annotated[int, typer.Option("--hub-limit", help="Holdings with more outflows "
                                           "than this are reported, not followed.")] = 10_000,
    labels_from_workspace: Annotated[bool, typer.Option(
        "--labels-from-workspace", help="Stop at the workspace's cash-out/dark/parked labels "
        "(broadcast to the job).")] = False,
    chain: Annotated[str, typer.Option("--chain", help="Chain of ethereum-etl inputs.")] =
    "ethereum",
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Cut a theft's neighbourhood out of whole-chain Parquet with Spark (local or cluster).

    Load the result with `heisttrace ingest parquet OUT/flows`, then trace as usual.
    """
    from heisttrace.errors import HeisttraceError

    try:
        from pyspark.errors import PySparkException
    except ImportError as exc:
        raise HeisttraceError(
            "spark-extract needs PySpark and Java: pip install 'heisttrace[spark]'"
        ) from exc
    from heisttrace.scale.extract import extract_neighbourhood, spark_session

    roles = None
    if labels_from_workspace:
        from heisttrace.labels.roles import address_roles
        from heisttrace.ledger import open_workspace

        with open_workspace(workspace, create=False) as ws:
            roles = address_roles(ws, None)
    from pyspark.sql import SparkSession

    # A session already running in this process (an embedding program) is used, not stopped.
    own = SparkSession.getActiveSession() is None
    spark = spark_session(master)
    if own:
        spark.sparkContext.setLogLevel("ERROR")
    try:
        with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"),
                      TimeElapsedColumn(), console=err_console, transient=True,
                      disable=json) as bar:
            task = bar.add_task("starting", total=None)
            try:
                res = extract_neighbourhood(
                    spark, input, seed, out, until=until, max_hops=max_hops,
                    hub_limit=hub_limit, roles=roles, chain=chain,
                    progress=lambda msg: bar.update(task, description=msg))
            except PySparkException as exc:
                # Spark's own errors (unreadable Parquet, a value that is not a number under
                # ANSI casts) as one line, not a JVM stack trace.
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise HeisttraceError(f"Spark job failed: {first}") from exc
    finally:
        if own:
            spark.stop()
    if json:
        print_json(res.as_dict())
        return
    share = res.kept / res.flows_in if res.flows_in else 0.0
    console.print(f"[green]spark-extract[/green]: kept {res.kept:,} of {res.flows_in:,} flows "
                  f"({share:.2%}), {res.reached:,} holdings, {res.iterations} rounds, "
                  f"{len(res.hubs)} hubs ({res.seconds:.1f}s) -> {out}")
    if res.hubs:
        console.print(f"[yellow]warning:[/yellow] {len(res.hubs)} hub(s) not followed "
                      "(see manifest.json); the trace beyond them is not exact")
    if res.hop_limit_hit:
        console.print("[yellow]warning:[/yellow] stopped at --max-hops; the trace beyond is "
                      "not exact")


def parquet(
    path: Annotated[Path, typer.Argument(help="FLOW_SCHEMA Parquet file or folder (e.g. the "
                                         "flows/ folder written by spark-extract).")],
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Import a flows Parquet dataset: all of it or nothing, and importing twice adds nothing."""
    from heisttrace.ledger import open_workspace
    from heisttrace.sources.parquet import ingest_parquet

    with open_workspace(workspace) as ws:
        report = ingest_parquet(ws, path)
    if json:
        print_json(report.as_dict())
        return
    console.print(f"[green]parquet[/green]: {report.flows_added:,} flows added, "
                  f"{report.duplicates:,} skipped as duplicates ({report.seconds:.1f}s)")


def export_parquet(
    out: Annotated[Path, typer.Argument(help="Output folder: FLOW_SCHEMA Parquet, one "
                                        "date=YYYY-MM-DD/ folder per UTC day.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it is not "
                                            "empty.")] = False,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Write the workspace's flows as date-partitioned Parquet, the input spark-extract takes."""
    from heisttrace.ledger import open_workspace
    from heisttrace.scale.export import export_parquet as export

    with open_workspace(workspace, create=False) as ws:
        report = export(ws, out, overwrite=overwrite)
    if json:
        print_json(report.as_dict())
        return
    console.print(f"[green]export-parquet[/green]: {report.flows:,} flows in {report.files} "
                  f"file(s) over {report.days} day(s) ({report.seconds:.1f}s) -> {out}")


def register(root: typer.Typer) -> None:
    root.command("spark-extract")(spark_extract)
    root.command("export-parquet")(export_parquet)


def register_ingest(app: typer.Typer) -> None:
    app.command("parquet")(parquet)
