"""Parquet inputs as flows in Spark: ethereum-etl tables or heisttrace's own flows Parquet.

The ethereum-etl mapping is sources/evm.py's, re-expressed in Spark SQL so that a transaction
gets the same flows with the same identity (chain, tx_hash, ordinal) as from the local
importers: position 0 the fee (gas_used * effective price, else gas price, paid even when the
transaction failed), 1 the value of a successful transaction (a creation pays the new
contract), 2.. the internal value transfers in trace order, LOG_BASE + log_index the token
transfers. Read that module's docstring for the reasons behind each rule.

Layout: an input path holding sub-folders `transactions`, `token_transfers`, `traces` (any of
them; each a Parquet dataset, e.g. partitioned `date=YYYY-MM-DD/`) is ethereum-etl; any other
path is a flows dataset with FLOW_SCHEMA columns (partitioned by date or not). Partition
columns that are not part of the schema are dropped.
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from heisttrace.errors import InputError
from heisttrace.ledger.schema import FEE_SINK, FLOW_COLUMNS, LOG_BASE, TX_STRIDE, native_asset

ETL_TABLES = ("transactions", "token_transfers", "traces")
FLOW_TYPES = {
    "chain": "string", "block": "bigint", "time": "bigint", "ordinal": "bigint",
    "tx_hash": "string", "src": "string", "dst": "string", "asset": "string",
    "amount_out": "string", "amount_in": "string", "kind": "string", "dst_chain": "string",
    "dst_asset": "string",
}
ETL_REQUIRED = {
    "transactions": ("hash", "block_number", "transaction_index", "from_address", "value"),
    "token_transfers": ("token_address", "from_address", "to_address", "value",
                        "transaction_hash", "log_index", "block_number"),
    "traces": ("block_number", "trace_type"),
}


def _text(df: DataFrame, name: str, lower: bool = False) -> F.Column:
    """A column as trimmed text, '' as null; a missing column is null."""
    if name not in df.columns:
        return F.lit(None).cast("string")
    dtype = df.schema[name].dataType
    if isinstance(dtype, T.ArrayType):
        col = F.concat_ws(",", F.col(name).cast("array<string>"))
    elif isinstance(dtype, T.DecimalType):
        col = F.col(name).cast(T.DecimalType(38, 0)).cast("string")
    else:
        col = F.col(name).cast("string")
    col = F.when(F.trim(col) == "", None).otherwise(F.trim(col))
    return F.lower(col) if lower else col


def _bigint(df: DataFrame, name: str) -> F.Column:
    if name not in df.columns:
        return F.lit(None).cast("bigint")
    if isinstance(df.schema[name].dataType, T.TimestampType):
        return F.unix_timestamp(F.col(name))
    return F.col(name).cast("bigint")


def _norm(col: F.Column) -> F.Column:
    """A decimal string without leading zeros ('0' for zero)."""
    stripped = F.regexp_replace(col, "^0+", "")
    return F.when(stripped == "", F.lit("0")).otherwise(stripped)


def _positive(col: F.Column) -> F.Column:
    return F.coalesce(F.regexp_replace(col, "^0+", "") != "", F.lit(False))


def _require(df: DataFrame, table: str, where: str) -> None:
    for col in ETL_REQUIRED[table]:
        if col not in df.columns:
            raise InputError(f"missing column '{col}' (has: {', '.join(sorted(df.columns))})",
                             file=where, field=col)


def etl_flows(spark: SparkSession, tables: dict[str, DataFrame], chain: str) -> DataFrame:
    """FLOW_SCHEMA flows of ethereum-etl tables (any subset of ETL_TABLES)."""
    asset = native_asset(chain)
    parts: list[DataFrame] = []
    txs = tables.get("transactions")
    trs = tables.get("traces")
    tts = tables.get("token_transfers")

    tr = None
    if trs is not None:
        tr = trs.select(
            _text(trs, "transaction_hash", True).alias("tx_hash"),
            _bigint(trs, "block_number").alias("block"),
            _bigint(trs, "transaction_index").alias("txi"),
            _text(trs, "from_address", True).alias("src"),
            _text(trs, "to_address", True).alias("dst"),
            _text(trs, "value").alias("value"),
            _text(trs, "trace_type").alias("trace_type"),
            _text(trs, "call_type").alias("call_type"),
            F.coalesce(_text(trs, "trace_address"), F.lit("")).alias("trace_address"),
            _text(trs, "error").alias("error"),
            _text(trs, "status").alias("status"),
            _bigint(trs, "block_timestamp").alias("time"),
        ).where(F.col("trace_type").isin("call", "create", "create2", "suicide"))

    if txs is not None:
        t = txs.select(
            _text(txs, "hash", True).alias("tx_hash"),
            _bigint(txs, "block_number").alias("block"),
            _bigint(txs, "transaction_index").alias("txi"),
            _text(txs, "from_address", True).alias("src"),
            _text(txs, "to_address", True).alias("to"),
            _text(txs, "value").alias("value"),
            _text(txs, "receipt_gas_used").alias("gas_used"),
            F.coalesce(_text(txs, "receipt_effective_gas_price"),
                       _text(txs, "gas_price")).alias("price"),
            _text(txs, "receipt_status").alias("rstatus"),
            _text(txs, "receipt_contract_address", True).alias("created"),
            _bigint(txs, "block_timestamp").alias("time"),
        )
        if tr is not None:
            top = (tr.where(F.col("trace_address") == "").groupBy(F.col("tx_hash").alias("_th"))
                   .agg(F.bool_and(F.col("error").isNull()
                                   & (F.coalesce(F.col("status"), F.lit("1")) != "0")).alias("_tok"),
                        F.first(F.when(F.col("trace_type").startswith("create"),
                                       F.col("dst")), ignorenulls=True).alias("_tcreated")))
            t = t.join(top, F.col("_th") == F.col("tx_hash"), "left")
        else:
            t = t.withColumn("_tok", F.lit(None).cast("boolean")).withColumn(
                "_tcreated", F.lit(None).cast("string"))
        t = t.select(
            "tx_hash", "block", "txi", "src", "value", "gas_used", "price", "time",
            F.coalesce("to", "created", "_tcreated").alias("dst"),
            F.when(F.col("rstatus").isNotNull(), F.col("rstatus") != "0")
            .otherwise(F.coalesce("_tok", F.lit(True))).alias("ok"),
        )
        fee = (F.col("gas_used").cast(T.DecimalType(20, 0))
               * F.col("price").cast(T.DecimalType(20, 0))).cast(T.DecimalType(38, 0))
        parts.append(t.where(F.col("gas_used").isNotNull() & F.col("price").isNotNull()
                             & _positive(F.col("gas_used")) & _positive(F.col("price")))
                     .select("block", "time", (F.col("txi") * TX_STRIDE).alias("ordinal"),
                             "tx_hash", "src", F.lit(FEE_SINK).alias("dst"),
                             F.lit(asset).alias("asset"), fee.cast("string").alias("amount"),
                             F.lit("fee").alias("kind")))
        parts.append(t.where(F.col("ok") & _positive(F.col("value")))
                     .select("block", "time", (F.col("txi") * TX_STRIDE + 1).alias("ordinal"),
                             "tx_hash", "src", "dst", F.lit(asset).alias("asset"),
                             _norm(F.col("value")).alias("amount"), F.lit("native").alias("kind")))
        failed = t.where(~F.col("ok")).select(F.col("tx_hash").alias("_fh"))
        tx_idx = t.select(F.col("tx_hash").alias("_xh"), F.col("txi").alias("_xi"),
                          F.col("time").alias("_xt"))
    else:
        failed = None
        tx_idx = None

    if tr is not None:
        if tx_idx is not None:
            tr = (tr.join(tx_idx, F.col("_xh") == F.col("tx_hash"), "left")
                  .withColumn("txi", F.coalesce("txi", "_xi"))
                  .withColumn("time", F.coalesce("time", "_xt")).drop("_xh", "_xi", "_xt"))
        err = (tr.where(F.col("error").isNotNull() | (F.col("status") == "0"))
               .select(F.col("tx_hash").alias("_eh"), F.col("trace_address").alias("_ea"))
               .distinct())
        cand = tr.where((F.col("trace_address") != "") & F.col("value").isNotNull()
                        & _positive(F.col("value")) & F.col("src").isNotNull()
                        & F.col("dst").isNotNull()
                        & ((F.col("trace_type") != "call") | (F.col("call_type") == "call")))
        # A failed frame (or the failed top frame) voids its whole subtree.
        cand = cand.join(err, (F.col("_eh") == F.col("tx_hash")) & (
            (F.col("_ea") == "") | (F.col("_ea") == F.col("trace_address"))
            | F.col("trace_address").startswith(F.concat(F.col("_ea"), F.lit(",")))), "left_anti")
        if failed is not None:
            cand = cand.join(failed, F.col("_fh") == F.col("tx_hash"), "left_anti")
        # Trace order: trace_address compared as integer paths (Spark compares arrays
        # element-wise, shorter prefix first), like DuckDB's BIGINT[] ordering.
        path = F.split(F.col("trace_address"), ",").cast("array<bigint>")
        from pyspark.sql.window import Window

        w = Window.partitionBy("tx_hash").orderBy(path)
        cand = cand.withColumn("pos", F.row_number().over(w) + 1)
        parts.append(cand.select("block", "time",
                                 (F.col("txi") * TX_STRIDE + F.col("pos")).alias("ordinal"),
                                 "tx_hash", "src", "dst", F.lit(asset).alias("asset"),
                                 _norm(F.col("value")).alias("amount"),
                                 F.lit("internal").alias("kind")))

    if tts is not None:
        tk = tts.select(
            _bigint(tts, "block_number").alias("block"),
            _bigint(tts, "block_timestamp").alias("time"),
            _bigint(tts, "transaction_index").alias("txi"),
            _bigint(tts, "log_index").alias("log_index"),
            _text(tts, "transaction_hash", True).alias("tx_hash"),
            _text(tts, "from_address", True).alias("src"),
            _text(tts, "to_address", True).alias("dst"),
            _text(tts, "token_address", True).alias("asset"),
            _text(tts, "value").alias("value"),
        )
        if tx_idx is not None:
            tk = (tk.join(tx_idx, F.col("_xh") == F.col("tx_hash"), "left")
                  .withColumn("txi", F.coalesce("txi", "_xi"))
                  .withColumn("time", F.coalesce("time", "_xt")).drop("_xh", "_xi", "_xt"))
        parts.append(tk.select("block", "time",
                               (F.col("txi") * TX_STRIDE + LOG_BASE + F.col("log_index"))
                               .alias("ordinal"), "tx_hash", "src", "dst", "asset",
                               _norm(F.col("value")).alias("amount"),
                               F.lit("token").alias("kind")))
    if not parts:
        raise InputError("no ethereum-etl table (transactions, token_transfers, traces) found")
    u = parts[0]
    for p in parts[1:]:
        u = u.unionByName(p)
    return u.select(
        F.lit(chain).alias("chain"), "block", "time", "ordinal", "tx_hash", "src", "dst",
        "asset", F.col("amount").alias("amount_out"), F.col("amount").alias("amount_in"),
        "kind", F.lit(None).cast("string").alias("dst_chain"),
        F.lit(None).cast("string").alias("dst_asset"),
    )


def flows_dataset(spark: SparkSession, path: str) -> DataFrame:
    """A FLOW_SCHEMA Parquet dataset (heisttrace's own export), columns checked."""
    df = spark.read.option("mergeSchema", "false").parquet(path)
    missing = [c for c in FLOW_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"not a flows dataset: missing column(s) {', '.join(missing)} "
                         f"(and no ethereum-etl sub-folders {', '.join(ETL_TABLES)})",
                         file=path, field=missing[0])
    return df.select(*[F.col(c).cast(FLOW_TYPES[c]).alias(c) for c in FLOW_COLUMNS])


def etl_layout(raw: str) -> bool:
    """Whether an input path is a folder of ethereum-etl tables (else a flows dataset)."""
    path = Path(raw)
    return "://" not in raw and any((path / t).is_dir() for t in ETL_TABLES)


def read_inputs(spark: SparkSession, inputs: list[str], chain: str = "ethereum") -> DataFrame:
    """All input paths as one flows frame (FLOW_COLUMNS)."""
    if not inputs:
        raise InputError("at least one --input path is needed", field="input")
    frames: list[DataFrame] = []
    for raw in inputs:
        path = Path(raw)
        if "://" not in raw and not path.exists():
            raise InputError("input path does not exist", file=raw, field="input")
        subs = {t: path / t for t in ETL_TABLES if (path / t).is_dir()}
        if subs:
            tables = {}
            for t, p in subs.items():
                df = spark.read.parquet(str(p))
                _require(df, t, str(p))
                tables[t] = df
            frames.append(etl_flows(spark, tables, chain))
        else:
            frames.append(flows_dataset(spark, raw))
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    if len(frames) > 1:
        out = out.dropDuplicates(["chain", "tx_hash", "ordinal"])
    return out
