"""The neighbourhood of a theft, cut out of whole-chain Parquet with Spark.

A whole chain does not fit on one machine, but the exact trace only needs the holdings the
stolen money can have reached, and for each of them every flow in and out (the haircut share
and the FIFO queue of a holding depend on its whole balance, not only on tainted inflows).

Reach is computed on holdings (chain, address, asset), time-respecting: a holding reached at
time t reaches the destination holding of each of its flows at or after t (the earliest such
time wins). It is a superset of what any policy can taint, because taint only moves along such
flows. Expansion stops where the trace engine stops (fee sink, labelled cash_out/dark/parked/
frozen, non-conversion flows into a conversion label; see trace/encode.py), at hubs (holdings
with more outflows than `hub_limit` after their reach time: reported, not followed, which is
where exactness ends), and after `max_hops` rounds.

Kept: every flow out of or into a reached, non-hub holding, plus the seed transactions. For
every reached holding the local ledger then holds its full history, and holdings outside the
set were never tainted, so local haircut/FIFO results equal the full-ledger ones.

Only the DataFrame API: each round is a semi-join of the flows against the frontier and an
anti-join against what is already reached; the reached set is checkpointed every round so its
lineage does not grow; labels are a broadcast join. Nothing large is collected to the driver.
"""

from __future__ import annotations

import json
import time as _time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from heisttrace.errors import InputError
from heisttrace.ledger.schema import FEE_SINK, FLOW_COLUMNS
from heisttrace.scale.etl_spark import read_inputs
from heisttrace.trace.seeds import Seed, parse_seeds, parse_time

STOP_ROLES = ("cash_out", "dark", "parked", "frozen")
CONVERSION_KINDS = ("swap", "bridge")
DEFAULT_HUB_LIMIT = 10_000
MANIFEST = "manifest.json"


@dataclass
class ExtractResult:
    """What the job did; written next to the Parquet as manifest.json."""

    inputs: list[str]
    seeds: list[str]
    until: int | None
    max_hops: int | None
    hub_limit: int
    flows_in: int = 0
    kept: int = 0
    reached: int = 0
    iterations: int = 0
    hop_limit_hit: bool = False
    hubs: list[dict[str, object]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def spark_session(master: str = "local[*]", shuffle_partitions: int | None = None,
                  app_name: str = "heisttrace-extract",
                  driver_memory: str | None = None) -> SparkSession:
    """A session that works unchanged on local[*] and on a cluster URL."""
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.session.timeZone", "UTC"))
    if driver_memory:  # only takes effect when this call starts the JVM (local mode)
        builder = builder.config("spark.driver.memory", driver_memory)
    if shuffle_partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    return builder.getOrCreate()


def _with_holdings(flows: DataFrame) -> DataFrame:
    return (flows.withColumn("dchain", F.coalesce("dst_chain", "chain"))
            .withColumn("dasset", F.coalesce("dst_asset", "asset")))


def _roles_df(spark: SparkSession, roles: object | None) -> DataFrame:
    """(chain, address, role) as a Spark frame from an Arrow table, a list of tuples or None."""
    schema = "chain string, address string, role string"
    if roles is None:
        return spark.createDataFrame([], schema)
    if hasattr(roles, "select") and hasattr(roles, "to_pylist"):  # pyarrow.Table
        rows = [(r["chain"], r["address"], r["role"])
                for r in roles.select(["chain", "address", "role"]).to_pylist()]
    else:
        rows = [tuple(r) for r in roles]  # type: ignore[union-attr]
    return spark.createDataFrame(rows, schema)


def _stop_flag(flows: DataFrame, roles: DataFrame) -> DataFrame:
    """Mirror of trace/encode.py: which flows end in a stopping holding."""
    r = F.broadcast(roles.select(F.col("chain").alias("_rc"), F.col("address").alias("_ra"),
                                 F.col("role").alias("_role")))
    joined = flows.join(r, (F.col("_rc") == F.col("dchain")) & (F.col("_ra") == F.col("dst")),
                        "left")
    stop = ((F.col("dst") == FEE_SINK) | F.col("_role").isin(*STOP_ROLES)
            | ((F.col("_role") == "conversion") & ~F.col("kind").isin(*CONVERSION_KINDS)))
    return joined.withColumn("_stop", F.coalesce(stop, F.lit(False))).drop("_rc", "_ra", "_role")


def _drop_ignored(flows: DataFrame, roles: DataFrame) -> DataFrame:
    """Flows touching an `ignore` label (spam) are never followed by the engine; nor here."""
    ig = F.broadcast(roles.where(F.col("role") == "ignore")
                     .select(F.col("chain").alias("_ic"), F.col("address").alias("_ia"))
                     .distinct())
    for chain_col, addr_col in (("chain", "asset"), ("chain", "src"), ("dchain", "dst"),
                                ("dchain", "dasset")):
        flows = flows.join(ig, (F.col("_ic") == F.col(chain_col))
                           & (F.col("_ia") == F.col(addr_col)), "left_anti")
    return flows


def _seed_holdings(flows: DataFrame, seeds: list[Seed]) -> DataFrame:
    """Holdings tainted by the seeds with their reach time (chain, address, asset, t)."""
    parts: list[DataFrame] = []
    hashes = [s.tx_hash for s in seeds if s.tx_hash]
    if hashes:
        tx = flows.where(F.col("tx_hash").isin(*hashes))
        # Victims send without receiving in the tx (trace/seeds.py): their flows' destinations.
        receivers = tx.select(F.col("tx_hash").alias("_rh"), F.col("dst").alias("_recv"))
        victim = (tx.join(receivers.distinct(), (F.col("_rh") == F.col("tx_hash"))
                          & (F.col("_recv") == F.col("src")), "left_anti")
                  .where((F.col("dst") != FEE_SINK) & (F.col("kind") != "fee")))
        parts.append(victim.select(F.col("dchain").alias("chain"), F.col("dst").alias("address"),
                                   F.col("dasset").alias("asset"), F.col("time").alias("t")))
    for s in seeds:
        if s.address is None:
            continue
        held = flows.where(F.col("dst") == s.address).select(
            F.col("dchain").alias("chain"), F.col("dst").alias("address"),
            F.col("dasset").alias("asset"))
        sent = flows.where(F.col("src") == s.address).select(
            "chain", F.col("src").alias("address"), "asset")
        parts.append(held.union(sent).distinct().withColumn("t", F.lit(int(s.time or 0))))
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out.groupBy("chain", "address", "asset").agg(F.min("t").alias("t"))


def extract_neighbourhood(
    spark: SparkSession,
    inputs: list[str],
    seeds: list[str],
    out: str | Path,
    until: int | str | None = None,
    max_hops: int | None = None,
    hub_limit: int = DEFAULT_HUB_LIMIT,
    roles: object | None = None,
    chain: str = "ethereum",
    progress: Callable[[str], None] | None = None,
) -> ExtractResult:
    """Write the neighbourhood flows (FLOW_SCHEMA Parquet) and manifest.json into `out`."""
    started = _time.perf_counter()
    seed_list = parse_seeds(seeds)
    until_ts = parse_time(str(until), "until") if until is not None else None
    if max_hops is not None and max_hops < 1:
        raise InputError("--max-hops must be at least 1", field="max_hops")
    result = ExtractResult(inputs=[str(p) for p in inputs], seeds=list(seeds), until=until_ts,
                           max_hops=max_hops, hub_limit=hub_limit)
    say = progress or (lambda _msg: None)

    say("read")
    flows = read_inputs(spark, inputs, chain)
    if until_ts is not None:
        flows = flows.where(F.col("time") <= until_ts)
    roles_df = _roles_df(spark, roles)
    flows = _stop_flag(_drop_ignored(_with_holdings(flows), roles_df), roles_df)
    flows = flows.persist()
    result.flows_in = flows.count()

    say("seeds")
    reached = _seed_holdings(flows, seed_list).localCheckpoint(eager=True)
    if reached.isEmpty():
        flows.unpersist()
        raise InputError("no seed was found in the input (no seed transaction or address)",
                         field="seed")
    frontier = reached
    hubs: DataFrame | None = None
    # Only flows that can pass taint on take part in the rounds.
    movable = flows.where(~F.col("_stop")).select(
        "chain", "src", "asset", "dchain", "dst", "dasset", "time")

    while True:
        if max_hops is not None and result.iterations >= max_hops:
            result.hop_limit_hit = True
            break
        result.iterations += 1
        say(f"round {result.iterations}")
        f = frontier.select(F.col("chain").alias("_fc"), F.col("address").alias("_fa"),
                            F.col("asset").alias("_fs"), F.col("t").alias("_ft"))
        step = (movable.join(f, (F.col("chain") == F.col("_fc")) & (F.col("src") == F.col("_fa"))
                             & (F.col("asset") == F.col("_fs")))
                .where(F.col("time") >= F.col("_ft")))
        fan = step.groupBy("_fc", "_fa", "_fs").agg(F.count(F.lit(1)).alias("fan_out"),
                                                  F.min("_ft").alias("t"))
        new_hubs = (fan.where(F.col("fan_out") > hub_limit)
                    .select(F.col("_fc").alias("chain"), F.col("_fa").alias("address"),
                            F.col("_fs").alias("asset"), "t", "fan_out")
                    .localCheckpoint(eager=True))
        if not new_hubs.isEmpty():
            hubs = new_hubs if hubs is None else hubs.unionByName(new_hubs)
            hubs = hubs.groupBy("chain", "address", "asset").agg(
                F.min("t").alias("t"), F.max("fan_out").alias("fan_out")).localCheckpoint()
            step = step.join(new_hubs.select(F.col("chain").alias("_fc"),
                                             F.col("address").alias("_fa"),
                                             F.col("asset").alias("_fs")),
                             ["_fc", "_fa", "_fs"], "left_anti")
        cand = (step.groupBy(F.col("dchain").alias("chain"), F.col("dst").alias("address"),
                             F.col("dasset").alias("asset"))
                .agg(F.min("time").alias("t")))
        r = reached.select(F.col("chain").alias("_rc"), F.col("address").alias("_ra"),
                           F.col("asset").alias("_rs"), F.col("t").alias("_rt"))
        # New holdings, or ones now reached earlier than before (their outflows widen).
        new = (cand.join(r, (F.col("chain") == F.col("_rc")) & (F.col("address") == F.col("_ra"))
                         & (F.col("asset") == F.col("_rs")), "left")
               .where(F.col("_rt").isNull() | (F.col("t") < F.col("_rt")))
               .select("chain", "address", "asset", "t")
               .localCheckpoint(eager=True))
        if new.isEmpty():
            break
        reached = (reached.unionByName(new).groupBy("chain", "address", "asset")
                   .agg(F.min("t").alias("t")).localCheckpoint(eager=True))
        frontier = new

    say("write")
    keep_h = reached
    if hubs is not None:
        keep_h = reached.join(hubs.select("chain", "address", "asset"),
                              ["chain", "address", "asset"], "left_anti")
    keep_h = keep_h.select("chain", "address", "asset").localCheckpoint(eager=True)
    result.reached = keep_h.count()
    ks = keep_h.select(F.col("chain").alias("_kc"), F.col("address").alias("_ka"),
                       F.col("asset").alias("_ks"))
    out_of = flows.join(ks, (F.col("chain") == F.col("_kc")) & (F.col("src") == F.col("_ka"))
                        & (F.col("asset") == F.col("_ks")), "left_semi")
    into = flows.join(ks, (F.col("dchain") == F.col("_kc")) & (F.col("dst") == F.col("_ka"))
                      & (F.col("dasset") == F.col("_ks")), "left_semi")
    seed_hashes = [s.tx_hash for s in seed_list if s.tx_hash]
    parts = [out_of, into]
    if seed_hashes:
        parts.append(flows.where(F.col("tx_hash").isin(*seed_hashes)))
    kept = parts[0]
    for p in parts[1:]:
        kept = kept.unionByName(p)
    kept = kept.select(*FLOW_COLUMNS).dropDuplicates(["chain", "tx_hash", "ordinal"])
    out_dir = Path(out)
    flows_url = str(out).rstrip("/") + "/flows"  # not Path: keeps hdfs:// and s3a:// intact
    (kept.repartition(max(1, spark.sparkContext.defaultParallelism), "chain", "tx_hash")
     .write.mode("overwrite").parquet(flows_url))
    kept_back = spark.read.parquet(flows_url)
    result.kept = kept_back.count()
    if hubs is not None:
        # Hubs are few by construction (each one is a big holding): fine to bring back.
        result.hubs = [row.asDict() for row in hubs.orderBy(F.desc("fan_out")).limit(1000)
                       .collect()]
    flows.unpersist()
    result.seconds = round(_time.perf_counter() - started, 3)
    (out_dir / MANIFEST).write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    return result
