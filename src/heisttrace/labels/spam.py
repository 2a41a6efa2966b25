"""Spam and address poisoning: label what carries no value so the engine never follows it.

Three kinds, each written as category `spam` (role `ignore`), heuristic, with evidence:

(a) fake tokens: a token (from the `tokens` registry) whose symbol, after folding look-alike
    characters (`confusables.fold`), is a known token's symbol while its contract is not the
    real one (`ЕТН`, `USDT` at another address), or whose symbol has non-ASCII letters, or whose
    name only differs from Latin by look-alikes;
(b) senders whose only transfers are zero-value or fake-token ones and who never moved or
    received anything of value (fabricated `Transfer` events, poisoning bots);
(c) look-alike vanity addresses: L shares the first and last `affix` (default 4) hex digits
    with R, V really transacted with R, and L exchanged only a zero/dust/fake transfer with V.

An address that carries an imported label (a real entity) is never labelled spam, nor is a
token contract listed as real.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from heisttrace.labels.confusables import fold, has_non_ascii_letters
from heisttrace.labels.normalize import HEURISTIC_CONFIDENCE
from heisttrace.labels.tokens import VERDICT_SCHEMA, listed_fakes, real_tokens, replace_verdicts
from heisttrace.ledger.schema import NATIVE_ASSETS
from heisttrace.ledger.workspace import Workspace

SOURCE = "heuristic:spam"
ZERO_ADDRESS = "0x" + "0" * 40

# Real contracts of the tokens poisoners imitate most (REFERENCE.md section 7), by chain and
# upper-case symbol. A token with one of these symbols at another address is a fake.
KNOWN_TOKENS: dict[tuple[str, str], frozenset[str]] = {
    ("ethereum", "USDT"): frozenset({"0xdac17f958d2ee523a2206206994597c13d831ec7"}),
    ("ethereum", "USDC"): frozenset({"0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"}),
    ("ethereum", "WETH"): frozenset({"0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"}),
    ("ethereum", "STETH"): frozenset({"0xae7ab96520de3a18e5e111b5eaab095312d7fe84"}),
    ("ethereum", "WSTETH"): frozenset({"0x7f39c581f595b53c5cb19bd0b3f8da6c935e2ca0"}),
    ("ethereum", "METH"): frozenset({"0xd5f7838f5c461feff7fe49ea5ebaf7728bb0adfa"}),
    ("ethereum", "CMETH"): frozenset({"0xe6829d9a7ee3040e1276fa75293bde931859e8fa"}),
}
REAL_CONTRACTS: frozenset[tuple[str, str]] = frozenset(
    (chain, a) for (chain, _), addrs in KNOWN_TOKENS.items() for a in addrs
)


@dataclass(frozen=True)
class SpamParams:
    affix: int = 4  # hex digits that must match at both ends of a look-alike address
    dust_wei: int = 10**13  # native transfers at or below this (0.00001 ETH) are dust


@dataclass(frozen=True)
class Registry:
    """What the label data says about tokens (labels/tokens.py): real contracts by symbol (with
    their names), and contracts listed as fake."""

    real: dict[tuple[str, str], dict[str, str | None]]  # (chain, SYMBOL) -> {address: name}
    fakes: dict[tuple[str, str], str]  # (chain, address) -> reason
    real_contracts: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def empty(cls) -> Registry:
        return cls({}, {})

    @classmethod
    def load(cls, ws: Workspace) -> Registry:
        real = real_tokens(ws)
        contracts = frozenset((c, a) for (c, _), addrs in real.items() for a in addrs)
        return cls(real, listed_fakes(ws), contracts)


def token_verdict(
    chain: str, address: str, symbol: str | None, name: str | None, registry: Registry | None = None
) -> str | None:
    """Why a token is fake, or None if nothing says so.

    Against the registered real tokens (thousands, and legit tokens share symbols: 332
    symbols of the etherscan list have several contracts) a same symbol alone is no evidence;
    a look-alike spelling of a registered symbol is, and so is a copy of both symbol and name.
    For the few tokens poisoners imitate most (KNOWN_TOKENS) the symbol alone suffices.
    """
    reg = registry or Registry.empty()
    listed = reg.fakes.get((chain, address))
    if listed:
        return f"listed as fake ({listed})"
    if (chain, address) in REAL_CONTRACTS or (chain, address) in reg.real_contracts:
        return None
    sym = symbol or ""
    folded = fold(sym).strip().upper()
    real = KNOWN_TOKENS.get((chain, folded))
    if real is not None:
        return f"symbol {sym!r} imitates {folded} (real contract {min(real)})"
    native = NATIVE_ASSETS.get(chain)
    if native and folded == native:
        return f"symbol {sym!r} imitates the native coin {native}"
    registered = reg.real.get((chain, folded))
    if registered:
        if sym.strip().upper() != folded:
            return f"symbol {sym!r} imitates registered token {folded} (real contract {min(registered)})"
        same_name = [a for a, n in registered.items()
                     if n and name and fold(name).strip().lower() == n.strip().lower()]
        if same_name:
            return f"copies symbol and name of registered token {folded} (real contract {min(same_name)})"
    if has_non_ascii_letters(sym):
        return f"symbol {sym!r} has non-ASCII letters (looks like {fold(sym)!r})"
    if name and has_non_ascii_letters(name) and fold(name).isascii():
        return f"name {name!r} imitates {fold(name)!r} with look-alike characters"
    return None


def fake_tokens(ws: Workspace, reg: Registry | None = None) -> pa.Table:
    """Tokens of the registry judged fake: chain, address, symbol, reason."""
    reg = reg or Registry.load(ws)
    rows = ws.con.execute("SELECT chain, address, symbol, name FROM tokens").fetchall()
    out: dict[str, list[str]] = {"chain": [], "address": [], "symbol": [], "reason": []}
    for chain, address, symbol, name in rows:
        reason = token_verdict(chain, address, symbol, name, reg)
        if reason:
            out["chain"].append(chain)
            out["address"].append(address)
            out["symbol"].append(symbol or "")
            out["reason"].append(reason)
    return pa.table(out, schema=pa.schema([(k, pa.string()) for k in out]))


def _sql(p: SpamParams) -> str:
    n = int(p.affix)
    return f"""
    WITH known AS (
        SELECT DISTINCT chain, address FROM labels
        WHERE NOT coalesce(heuristic, false) AND coalesce(category, '') <> 'spam'
    ),
    f AS (
        SELECT l.chain, l.tx_hash, l.src, l.dst, l.asset, l.kind,
               TRY_CAST(l.amount_out AS DOUBLE) AS amt,
               (ft.address IS NOT NULL) AS fake
        FROM ledger l LEFT JOIN _fake ft ON ft.chain = l.chain AND ft.address = l.asset
        WHERE l.kind IN ('native', 'token', 'internal')
          AND l.src NOT LIKE 'tx:%' AND l.dst NOT LIKE 'tx:%'
    ),
    tagged AS (
        SELECT *, (fake OR amt = 0) AS worthless,
               (fake OR amt = 0 OR (kind <> 'token' AND amt <= {int(p.dust_wei)})) AS poison
        FROM f
    ),
    -- (b) senders of nothing but worthless transfers, who never held anything of value
    senders AS (
        SELECT chain, src AS address, count(*) AS n, any_value(tx_hash) AS example_tx
        FROM tagged GROUP BY chain, src
        HAVING bool_and(worthless)
    ),
    valued_in AS (
        SELECT DISTINCT chain, dst AS address FROM tagged WHERE NOT worthless
    ),
    b AS (
        SELECT s.chain, s.address, 'zero_value_sender' AS kind,
               json_object('kind', 'zero_value_sender', 'worthless_transfers', s.n,
                           'example_tx', s.example_tx)::VARCHAR AS evidence
        FROM senders s
        ANTI JOIN valued_in v ON v.chain = s.chain AND v.address = s.address
        ANTI JOIN _fake ft ON ft.chain = s.chain AND ft.address = s.address
    ),
    -- (c) look-alikes: poison transfers between victim v and l; real ones between v and r
    poison AS (
        SELECT chain, tx_hash, src AS l, dst AS v FROM tagged WHERE poison AND src LIKE '0x%'
        UNION ALL
        SELECT chain, tx_hash, dst AS l, src AS v FROM tagged WHERE poison AND dst LIKE '0x%'
    ),
    real AS (
        SELECT DISTINCT chain, src AS v, dst AS r FROM tagged WHERE NOT poison
        UNION
        SELECT DISTINCT chain, dst AS v, src AS r FROM tagged WHERE NOT poison
    ),
    pairs AS (
        SELECT p.chain, p.l, p.v, r.r, min(p.tx_hash) AS tx_hash
        FROM poison p JOIN real r
          ON r.chain = p.chain AND r.v = p.v
         AND substr(r.r, 3, {n}) = substr(p.l, 3, {n}) AND right(r.r, {n}) = right(p.l, {n})
        WHERE r.r <> p.l AND length(p.l) = 42 AND length(r.r) = 42
        GROUP BY ALL
    ),
    c AS (
        SELECT chain, l AS address, 'lookalike_address' AS kind,
               json_object('kind', 'lookalike_address', 'imitates', arg_min(r, tx_hash),
                           'victim', arg_min(v, tx_hash), 'poison_tx', min(tx_hash))::VARCHAR AS evidence
        FROM pairs p
        WHERE NOT EXISTS (SELECT 1 FROM real x WHERE x.chain = p.chain AND x.v = p.v AND x.r = p.l)
        GROUP BY chain, l
    ),
    a AS (
        SELECT chain, address, 'fake_token' AS kind,
               json_object('kind', 'fake_token', 'symbol', symbol, 'reason', reason)::VARCHAR AS evidence
        FROM _fake
    ),
    everything AS (SELECT * FROM a UNION ALL SELECT * FROM c UNION ALL SELECT * FROM b)
    SELECT DISTINCT ON (e.chain, e.address) e.chain, e.address, e.kind, e.evidence
    FROM everything e
    ANTI JOIN known k ON k.chain = e.chain AND k.address = e.address
    WHERE e.address <> 'fees' AND e.address NOT IN (SELECT unnest(?))
    ORDER BY e.chain, e.address, e.kind
    """


def detect_spam(ws: Workspace, params: SpamParams | None = None) -> pa.Table:
    """Find fake tokens, worthless senders and look-alike addresses; replace the old labels.

    Returns chain, address, kind (fake_token / lookalike_address / zero_value_sender), evidence.
    """
    p = params or SpamParams()
    reg = Registry.load(ws)
    fakes = fake_tokens(ws, reg)
    # Real token contracts and the zero address (mints, burns) are never spam.
    real = sorted({a for _, a in REAL_CONTRACTS | reg.real_contracts} | {ZERO_ADDRESS})
    ws.con.register("_fake", fakes)
    try:
        with ws.transaction() as con:
            found = con.execute(_sql(p), [real]).fetch_arrow_table()
            con.register("_found", found)
            con.execute("DELETE FROM labels WHERE source = ?", [SOURCE])
            con.execute(
                f"""
                INSERT INTO labels (chain, address, entity, category, source, confidence, actor,
                                    heuristic, evidence)
                SELECT chain, address, kind, 'spam', '{SOURCE}', {HEURISTIC_CONFIDENCE}, NULL, true,
                       evidence
                FROM _found
                """
            )
            con.unregister("_found")
            # The token registry's heuristic verdicts: the fakes that were labelled spam.
            labelled = {(r["chain"], r["address"]) for r in found.to_pylist() if r["kind"] == "fake_token"}
            replace_verdicts(ws, SOURCE, pa.Table.from_pylist(
                [{"chain": f["chain"], "address": f["address"], "symbol": f["symbol"] or None,
                  "name": None, "real": False, "reason": f["reason"]}
                 for f in fakes.to_pylist() if (f["chain"], f["address"]) in labelled],
                schema=VERDICT_SCHEMA))
    finally:
        ws.con.unregister("_fake")
    return found


def spam_counts(ws: Workspace) -> dict[str, int]:
    """How many spam-labelled addresses, tokens among them, and ledger flows touching them.

    These flows are what the engine ignores; `summary` shows the counts so an investigator
    sees that poisoning was set aside, not lost.
    """
    row = ws.con.execute(
        """
        WITH s AS (SELECT DISTINCT chain, address, entity FROM labels WHERE category = 'spam'),
        a AS (SELECT DISTINCT chain, address FROM s),
        t AS (SELECT DISTINCT chain, address FROM s WHERE entity = 'fake_token'
              UNION SELECT a.chain, a.address FROM a JOIN tokens k USING (chain, address))
        SELECT (SELECT count(*) FROM a),
               (SELECT count(*) FROM t),
               (SELECT count(*) FROM ledger l WHERE EXISTS (
                   SELECT 1 FROM a WHERE a.chain = l.chain
                     AND a.address IN (l.asset, l.src, l.dst)))
        """
    ).fetchone()
    assert row is not None
    return {"spam_addresses": int(row[0]), "spam_tokens": int(row[1]), "spam_flows": int(row[2])}
