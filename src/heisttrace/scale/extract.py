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

Why it is fast: the rounds never touch the wide flows. Each holding is replaced once by a
64-bit key (xxhash64 of chain, address, asset), and a narrow table (src key, dst key, time,
stop flag; 25 bytes a flow) is persisted once and scanned by every round with the frontier
broadcast, so a round is a map-only scan plus aggregations the size of the neighbourhood. The
wide flows are read twice more: for the seeds (a filter) and for the final selection (a
map-only semi-join against the broadcast reached keys). Two holdings sharing a key are merged
into one node of the reach graph, which can only add reach (a merged node is reached as soon
as either is, at the earlier time), so a collision can enlarge the kept set but never lose a
flow; the only place it could matter is a hub, whose fan-out would count both holdings' flows
(reported by name, like every hub).

Only the DataFrame API; the reached set is checkpointed every round so its lineage does not
grow; labels are a broadcast join. Nothing large is collected to the driver.
"""

from __future__ import annotations

import json
import time as _time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from heisttrace.errors import InputError
from heisttrace.ledger.schema import FEE_SINK, FLOW_COLUMNS
from heisttrace.scale.etl_spark import etl_layout, read_inputs
from heisttrace.scale.metrics import group_shuffle_bytes
from heisttrace.trace.seeds import Seed, parse_seeds, parse_time

STOP_ROLES = ("cash_out", "dark", "parked", "frozen")
CONVERSION_KINDS = ("swap", "bridge")
DEFAULT_HUB_LIMIT = 10_000
# Up to this many holdings a frontier or reached set is broadcast (16 bytes a row: 32 MB);
# above it Spark's own join choice (a shuffle join) is left to do the work.
DEFAULT_BROADCAST_ROWS = 2_000_000
MANIFEST = "manifest.json"


@dataclass
class RoundStats:
    """One expansion round, for manifest.json: how the job grows and what it moves."""

    round: int
    frontier: int  # holdings expanded in this round
    flows_followed: int  # movable flows out of the frontier at or after its reach times
    newly_reached: int  # holdings reached for the first time
    reached_earlier: int  # holdings already reached, now at an earlier time (expanded again)
    hubs: int  # frontier holdings found to be hubs in this round
    seconds: float
    shuffle_write_bytes: int = -1  # -1: Spark did not expose it
    shuffle_read_bytes: int = -1


@dataclass
class ExtractResult:
    """What the job did; written next to the Parquet as manifest.json."""

    inputs: list[str]
    seeds: list[str]
    until: int | None
    max_hops: int | None
    hub_limit: int
    flows_in: int = 0
    movable: int = 0  # flows that can pass taint on (not into a stopping holding)
    kept: int = 0
    reached: int = 0
    iterations: int = 0
    hop_limit_hit: bool = False
    hubs: list[dict[str, object]] = field(default_factory=list)
    seconds: float = 0.0
    input_partitions: int = 0
    shuffle_partitions: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    rounds: list[RoundStats] = field(default_factory=list)

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



def _keyed(flows: DataFrame) -> DataFrame:
    """Add the 64-bit holding keys of the sender and receiver side of each flow."""
    return (flows.withColumn("_skey", F.xxhash64("chain", "src", "asset"))
            .withColumn("_dkey", F.xxhash64("dchain", "dst", "dasset")))


def _prepared(spark: SparkSession, inputs: list[str], until_ts: int | None,
              roles_df: DataFrame, chain: str) -> DataFrame:
    """The wide flows as every step sees them: until-cut, ignored dropped, stop flag, keys.

    Read three times (edges, seeds, final selection). A flows dataset is not persisted: each
    read is a Parquet scan a cluster does in parallel, cheaper than holding the chain in
    executor memory. ethereum-etl input is persisted by the caller (its mapping shuffles).
    """
    flows = read_inputs(spark, inputs, chain)
    if until_ts is not None:
        flows = flows.where(F.col("time") <= until_ts)
    return _keyed(_stop_flag(_drop_ignored(_with_holdings(flows), roles_df), roles_df))


def _seed_holdings(flows: DataFrame, seeds: list[Seed]) -> DataFrame:
    """Keys of the holdings tainted by the seeds with their reach time (key, t)."""
    parts: list[DataFrame] = []
    hashes = [s.tx_hash for s in seeds if s.tx_hash]
    if hashes:
        tx = flows.where(F.col("tx_hash").isin(*hashes))
        # Victims send without receiving in the tx (trace/seeds.py): their flows' destinations.
        receivers = tx.select(F.col("tx_hash").alias("_rh"), F.col("dst").alias("_recv"))
        victim = (tx.join(receivers.distinct(), (F.col("_rh") == F.col("tx_hash"))
                          & (F.col("_recv") == F.col("src")), "left_anti")
                  .where((F.col("dst") != FEE_SINK) & (F.col("kind") != "fee")))
        parts.append(victim.select(F.col("_dkey").alias("key"), F.col("time").alias("t")))
    for s in seeds:
        if s.address is None:
            continue
        held = flows.where(F.col("dst") == s.address).select(F.col("_dkey").alias("key"))
        sent = flows.where(F.col("src") == s.address).select(F.col("_skey").alias("key"))
        parts.append(held.union(sent).distinct().withColumn("t", F.lit(int(s.time or 0))))
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out.groupBy("key").agg(F.min("t").alias("t"))


def _small(df: DataFrame, rows: int, limit: int) -> DataFrame:
    """Broadcast a key set when it is small enough; otherwise let Spark shuffle-join it."""
    return F.broadcast(df) if rows <= limit else df


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
    broadcast_rows: int = DEFAULT_BROADCAST_ROWS,
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
    sc = spark.sparkContext
    run_id = uuid.uuid4().hex[:8]
    result.shuffle_partitions = int(spark.conf.get("spark.sql.shuffle.partitions") or 0)
    clock = _time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = _time.perf_counter()
        result.stage_seconds[stage] = round(now - clock, 3)
        clock = now

    say("read")
    flows = _prepared(spark, inputs, until_ts, _roles_df(spark, roles), chain)
    cached = any(etl_layout(p) for p in inputs)
    if cached:
        # Mapping ethereum-etl tables shuffles every transaction (trace order, the token
        # transfers' transaction index): do it once, not for each of the three reads.
        flows = flows.persist()
    # The narrow table every round scans: built and persisted once.
    edges = flows.select("_skey", "_dkey", "time", "_stop").persist()
    try:
        counts = {bool(r["_stop"]): int(r["count"])
                  for r in edges.groupBy("_stop").count().collect()}
        result.flows_in = sum(counts.values())
        result.movable = counts.get(False, 0)
        result.input_partitions = edges.rdd.getNumPartitions()
        lap("read_and_key")

        say("seeds")
        reached = _seed_holdings(flows, seed_list).localCheckpoint(eager=True)
        n_reached = reached.count()
        lap("seeds")
        if n_reached == 0:
            raise InputError("no seed was found in the input (no seed transaction or address)",
                             field="seed")
        frontier, n_front = reached, n_reached
        hubs: DataFrame | None = None
        movable = edges.where(~F.col("_stop")).select("_skey", "_dkey", "time")
        groups: list[str] = []

        try:
            while True:
                if max_hops is not None and result.iterations >= max_hops:
                    result.hop_limit_hit = True
                    break
                result.iterations += 1
                say(f"round {result.iterations}")
                group = f"heisttrace-{run_id}-round-{result.iterations}"
                groups.append(group)
                sc.setJobGroup(group, f"spark-extract round {result.iterations}")
                t0 = _time.perf_counter()
                f = _small(frontier.select(F.col("key").alias("_fk"), F.col("t").alias("_ft")),
                           n_front, broadcast_rows)
                step = (movable.join(f, F.col("_skey") == F.col("_fk"))
                        .where(F.col("time") >= F.col("_ft"))
                        .select("_skey", "_dkey", "time", "_ft").localCheckpoint(eager=True))
                fan = step.groupBy("_skey").agg(F.count(F.lit(1)).alias("fan_out"),
                                                F.min("_ft").alias("t"))
                sizes = fan.agg(F.sum("fan_out").alias("n"),
                                F.sum((F.col("fan_out") > hub_limit).cast("long")).alias("hubs")
                                ).first()
                n_step = int(sizes["n"] or 0) if sizes else 0
                n_hubs = int(sizes["hubs"] or 0) if sizes else 0
                if n_hubs:
                    new_hubs = (fan.where(F.col("fan_out") > hub_limit)
                                .select(F.col("_skey").alias("key"), "t", "fan_out")
                                .localCheckpoint(eager=True))
                    hubs = new_hubs if hubs is None else hubs.unionByName(new_hubs)
                    hubs = hubs.groupBy("key").agg(F.min("t").alias("t"),
                                                   F.max("fan_out").alias("fan_out")
                                                   ).localCheckpoint(eager=True)
                    step = step.join(F.broadcast(new_hubs.select(F.col("key").alias("_skey"))),
                                     "_skey", "left_anti")
                cand = step.groupBy(F.col("_dkey").alias("key")).agg(F.min("time").alias("t"))
                r = _small(reached.select(F.col("key").alias("_rk"), F.col("t").alias("_rt")),
                           n_reached, broadcast_rows)
                # New holdings, or ones now reached earlier than before (their outflows widen).
                new = (cand.join(r, F.col("key") == F.col("_rk"), "left")
                       .where(F.col("_rt").isNull() | (F.col("t") < F.col("_rt")))
                       .select("key", "t", F.col("_rt").isNull().alias("_fresh"))
                       .localCheckpoint(eager=True))
                tally = new.agg(F.count(F.lit(1)).alias("n"),
                                F.sum(F.col("_fresh").cast("long")).alias("fresh")).first()
                n_new = int(tally["n"]) if tally else 0
                n_fresh = int(tally["fresh"] or 0) if tally else 0
                if n_new:
                    reached = (reached.unionByName(new.select("key", "t")).groupBy("key")
                               .agg(F.min("t").alias("t")).localCheckpoint(eager=True))
                    n_reached += n_fresh
                result.rounds.append(RoundStats(
                    round=result.iterations, frontier=n_front, flows_followed=n_step,
                    newly_reached=n_fresh, reached_earlier=n_new - n_fresh, hubs=n_hubs,
                    seconds=round(_time.perf_counter() - t0, 3)))
                if not n_new:
                    break
                frontier, n_front = new.select("key", "t"), n_new
        finally:
            sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
            sc.setLocalProperty("spark.job.description", None)  # type: ignore[arg-type]
        lap("rounds")

        say("write")
        keep = reached.select("key")
        if hubs is not None:
            keep = keep.join(hubs.select("key"), "key", "left_anti")
        keep = keep.localCheckpoint(eager=True)
        result.reached = keep.count()
        k = _small(keep, result.reached, broadcast_rows)
        seed_hashes = [s.tx_hash for s in seed_list if s.tx_hash]
        wanted = F.col("_ks").isNotNull() | F.col("_kd").isNotNull()
        if seed_hashes:
            wanted = wanted | F.col("tx_hash").isin(*seed_hashes)
        # Map-only: two lookups in the broadcast keys, no shuffle of the chain.
        kept = (flows.join(k.select(F.col("key").alias("_ks")), F.col("_skey") == F.col("_ks"),
                           "left")
                .join(k.select(F.col("key").alias("_kd")), F.col("_dkey") == F.col("_kd"), "left")
                .where(wanted).select(*FLOW_COLUMNS))
        out_dir = Path(out)
        flows_url = str(out).rstrip("/") + "/flows"  # not Path: keeps hdfs:// and s3a:// intact
        (kept.repartition(max(1, sc.defaultParallelism), "chain", "tx_hash")
         .write.mode("overwrite").parquet(flows_url))
        result.kept = spark.read.parquet(flows_url).count()
        lap("select_and_write")
        if hubs is not None:
            # Hubs are few by construction (each one is a big holding): fine to bring back. Named
            # from the flows (a key shared by two holdings would list both).
            named = (flows.select("_skey", "chain", F.col("src").alias("address"), "asset")
                     .join(F.broadcast(hubs), F.col("_skey") == F.col("key"))
                     .select("chain", "address", "asset", "t", "fan_out").dropDuplicates())
            result.hubs = [row.asDict() for row in named.orderBy(F.desc("fan_out"), "address")
                           .limit(1000).collect()]
            lap("hub_names")
    finally:
        # Also on failure: a session shared with the caller keeps none of our caches.
        edges.unpersist()
        if cached:
            flows.unpersist()
    for stats, group in zip(result.rounds, groups, strict=True):
        stats.shuffle_write_bytes, stats.shuffle_read_bytes = group_shuffle_bytes(sc, group)
    result.seconds = round(_time.perf_counter() - started, 3)
    (out_dir / MANIFEST).write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    return result
