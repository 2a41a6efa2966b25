"""A real local Ethereum node (anvil) with a small scripted history, for the RPC importer.

`anvil_node` starts `anvil` (npm package @foundry-rs/anvil, on PATH during `make test`) on a
free port, `chain` plays a history on it once per test module: plain ETH transfers, a
hand-assembled ERC-20 token (deploy, mint, transfers, a failing transfer), a forwarder that
passes ETH on internally (once successfully, once reverting after the inner call), a contract
that always reverts, and a contract created with value. Other test modules import these.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
ETH = 10**18

# -- a tiny EVM assembler -------------------------------------------------------------------
OPCODES = {
    "STOP": 0x00, "ADD": 0x01, "SUB": 0x03, "LT": 0x10, "EQ": 0x14, "ISZERO": 0x15,
    "SHR": 0x1C, "CALLER": 0x33, "CALLVALUE": 0x34, "CALLDATALOAD": 0x35, "CALLDATACOPY": 0x37,
    "CODECOPY": 0x39,
    "POP": 0x50, "MSTORE": 0x52, "SLOAD": 0x54, "SSTORE": 0x55, "JUMPI": 0x57,
    "JUMPDEST": 0x5B, "GAS": 0x5A, "PUSH0": 0x5F, "LOG3": 0xA3, "CALL": 0xF1,
    "RETURN": 0xF3, "REVERT": 0xFD,
    **{f"DUP{i}": 0x7F + i for i in range(1, 17)},
    **{f"SWAP{i}": 0x8F + i for i in range(1, 17)},
}


def assemble(program: list[Any]) -> bytes:
    """Opcodes as strings, ("PUSH", int, nbytes), (":", label) and ("@", label) = PUSH2 label."""
    def size(item: Any) -> int:
        if isinstance(item, str):
            return 1
        if item[0] == "PUSH":
            return 1 + item[2]
        if item[0] == ":":
            return 1
        return 3  # PUSH2 label

    labels, pc = {}, 0
    for item in program:
        if isinstance(item, tuple) and item[0] == ":":
            labels[item[1]] = pc
        pc += size(item)
    out = bytearray()
    for item in program:
        if isinstance(item, str):
            out.append(OPCODES[item])
        elif item[0] == "PUSH":
            out.append(0x5F + item[2])
            out += item[1].to_bytes(item[2], "big")
        elif item[0] == ":":
            out.append(OPCODES["JUMPDEST"])
        else:
            out.append(0x61)
            out += labels[item[1]].to_bytes(2, "big")
    return bytes(out)


def P(value: int, nbytes: int | None = None) -> tuple[str, int, int]:
    return ("PUSH", value, nbytes or max(1, (value.bit_length() + 7) // 8))


def creation_code(runtime: bytes, constructor: list[Any] = ()) -> str:
    """Constructor code, then copy the runtime (appended after this code) to memory and return it."""
    ctor = assemble(list(constructor))
    stub_len = 3 + 1 + 3 + 1 + 1 + 1 + 1  # PUSH2 len, DUP1, PUSH2 off, PUSH0, CODECOPY, PUSH0, RETURN
    stub = assemble([P(len(runtime), 2), "DUP1", P(len(ctor) + stub_len, 2), "PUSH0",
                     "CODECOPY", "PUSH0", "RETURN"])
    assert len(stub) == stub_len
    return "0x" + (ctor + stub + runtime).hex()


def _return_word() -> list[Any]:
    return ["PUSH0", "MSTORE", P(32), "PUSH0", "RETURN"]


# ERC-20-like token. Balances live at storage slot = holder address (no keccak needed).
TOKEN_SUPPLY = 1_000_000 * ETH
TOKEN_CONSTRUCTOR = [
    P(TOKEN_SUPPLY, 32), "CALLER", "SSTORE",                       # balance[caller] = supply
    P(TOKEN_SUPPLY, 32), "PUSH0", "MSTORE",                         # mem[0] = supply
    "CALLER", "PUSH0", P(int(TRANSFER_TOPIC, 16), 32), P(32), "PUSH0", "LOG3",  # Transfer(0, caller, supply)
]
TOKEN_RUNTIME = assemble([
    "PUSH0", "CALLDATALOAD", P(0xE0), "SHR",                        # selector
    "DUP1", P(0xA9059CBB, 4), "EQ", ("@", "transfer"), "JUMPI",
    "DUP1", P(0x70A08231, 4), "EQ", ("@", "balanceOf"), "JUMPI",
    "DUP1", P(0x313CE567, 4), "EQ", ("@", "decimals"), "JUMPI",
    "DUP1", P(0x95D89B41, 4), "EQ", ("@", "symbol"), "JUMPI",
    (":", "fail"), "PUSH0", "PUSH0", "REVERT",
    (":", "transfer"),                                              # transfer(to, amount)
    P(0x24), "CALLDATALOAD", "CALLER", "SLOAD",                     # [bal, amt]
    "DUP2", "DUP2", "LT", ("@", "fail"), "JUMPI",                   # bal < amt -> revert
    "DUP2", "DUP2", "SUB", "CALLER", "SSTORE", "POP",               # balance[caller] -= amt; [amt]
    P(4), "CALLDATALOAD", "DUP1", "SLOAD", "DUP3", "ADD", "SWAP1", "SSTORE",  # balance[to] += amt
    "PUSH0", "MSTORE",                                              # mem[0] = amt
    P(4), "CALLDATALOAD", "CALLER", P(int(TRANSFER_TOPIC, 16), 32), P(32), "PUSH0", "LOG3",
    P(1), *_return_word(),
    (":", "balanceOf"), P(4), "CALLDATALOAD", "SLOAD", *_return_word(),
    (":", "decimals"), P(18), *_return_word(),
    (":", "symbol"),                                                # ABI string "TKN"
    P(0x20), "PUSH0", "MSTORE", P(3), P(0x20), "MSTORE",
    P(int.from_bytes(b"TKN".ljust(32, b"\0"), "big"), 32), P(0x40), "MSTORE",
    P(0x60), "PUSH0", "RETURN",
])
# Forwarder: sends its call value to the address in calldata word 0 with an inner CALL, then
# reverts if the inner call failed or calldata word 1 is non-zero (a revert after the move).
FORWARDER_RUNTIME = assemble([
    "PUSH0", "PUSH0", "PUSH0", "PUSH0", "CALLVALUE", "PUSH0", "CALLDATALOAD", "GAS", "CALL",
    "ISZERO", ("@", "fail"), "JUMPI",
    P(0x20), "CALLDATALOAD", ("@", "fail"), "JUMPI",
    "STOP",
    (":", "fail"), "PUSH0", "PUSH0", "REVERT",
])
REVERTER_RUNTIME = assemble(["PUSH0", "PUSH0", "REVERT"])
# Tryer: calls the forwarder in calldata word 0 with its call value and calldata words 1-2
# (destination, revert flag), ignores whether that call failed, and succeeds: a reverted
# inner call inside a successful transaction, whose value moves must not count.
TRYER_RUNTIME = assemble([
    P(64), P(32), "PUSH0", "CALLDATACOPY",                           # mem[0:64] = calldata[32:96]
    "PUSH0", "PUSH0", P(64), "PUSH0", "CALLVALUE", "PUSH0", "CALLDATALOAD", "GAS", "CALL",
    "POP", "STOP",
])


def word(value: int | str) -> str:
    return (int(value, 16) if isinstance(value, str) else value).to_bytes(32, "big").hex()


# -- the node ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    """Plain JSON-RPC to the test node."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(timeout=30)

    def rpc(self, method: str, *params: Any) -> Any:
        body = self.http.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                              "params": list(params)}).json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    def send(self, **tx: Any) -> str:
        tx = {k: hex(v) if isinstance(v, int) else v for k, v in tx.items()}
        return self.rpc("eth_sendTransaction", tx)

    def receipt(self, tx_hash: str, wait: float = 20.0) -> dict[str, Any]:
        """The receipt, waiting for the block: anvil mines asynchronously, and under load
        eth_sendTransaction returns before the automined block is there."""
        deadline = time.monotonic() + wait
        while True:
            receipt = self.rpc("eth_getTransactionReceipt", tx_hash)
            if receipt is not None or time.monotonic() > deadline:
                return receipt
            time.sleep(0.02)

    def head(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def balance(self, address: str, block: int) -> int:
        return int(self.rpc("eth_getBalance", address, hex(block)), 16)

    def token_balance(self, token: str, holder: str, block: int) -> int:
        data = "0x70a08231" + word(holder)
        return int(self.rpc("eth_call", {"to": token, "data": data}, hex(block)), 16)


@pytest.fixture(scope="module")
def anvil_node() -> Iterator[Node]:
    exe = shutil.which("anvil")
    assert exe, "anvil not on PATH: run `make test` (npm install) or add node_modules/.bin to PATH"
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--host", "127.0.0.1", "--silent"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    node = Node(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                node.head()
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("anvil did not start") from None
                time.sleep(0.1)
        yield node
    finally:
        node.http.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class Chain:
    node: Node
    accounts: list[str]
    first_block: int
    last_block: int
    token: str = ""
    forwarder: str = ""
    reverter: str = ""
    tryer: str = ""
    txs: dict[str, str] = field(default_factory=dict)  # name -> hash

    @property
    def url(self) -> str:
        return self.node.url


def play_history(node: Node) -> Chain:
    accounts = node.rpc("eth_accounts")
    a = accounts
    chain = Chain(node, accounts, first_block=node.head() + 1, last_block=0)
    tx = chain.txs
    tx["eth"] = node.send(**{"from": a[0], "to": a[1], "value": 1 * ETH})
    tx["deploy_token"] = node.send(**{"from": a[0], "data": creation_code(TOKEN_RUNTIME, TOKEN_CONSTRUCTOR), "gas": 1_000_000})
    chain.token = node.receipt(tx["deploy_token"])["contractAddress"]
    tx["deploy_forwarder"] = node.send(**{"from": a[0], "data": creation_code(FORWARDER_RUNTIME), "gas": 500_000})
    chain.forwarder = node.receipt(tx["deploy_forwarder"])["contractAddress"]
    tx["deploy_reverter_with_value"] = node.send(**{"from": a[0], "data": creation_code(REVERTER_RUNTIME), "gas": 500_000, "value": ETH // 10})
    chain.reverter = node.receipt(tx["deploy_reverter_with_value"])["contractAddress"]
    # One block holding several transactions, some failing.
    node.rpc("evm_setAutomine", False)
    tx["token_transfer"] = node.send(**{"from": a[0], "to": chain.token, "gas": 100_000,
                                        "data": "0xa9059cbb" + word(a[2]) + word(500 * ETH)})
    tx["forward"] = node.send(**{"from": a[1], "to": chain.forwarder, "gas": 200_000, "value": 3 * ETH // 10,
                                 "data": "0x" + word(a[3]) + word(0)})
    tx["revert"] = node.send(**{"from": a[2], "to": chain.reverter, "gas": 100_000, "value": ETH})
    tx["forward_then_revert"] = node.send(**{"from": a[3], "to": chain.forwarder, "gas": 200_000,
                                             "value": 2 * ETH // 10, "data": "0x" + word(a[4]) + word(1)})
    tx["token_overdraw"] = node.send(**{"from": a[4], "to": chain.token, "gas": 100_000,
                                        "data": "0xa9059cbb" + word(a[5]) + word(1)})
    tx["token_transfer_2"] = node.send(**{"from": a[2], "to": chain.token, "gas": 100_000,
                                          "data": "0xa9059cbb" + word(a[5]) + word(123)})
    node.rpc("evm_mine")
    node.rpc("evm_setAutomine", True)
    tx["deploy_tryer"] = node.send(**{"from": a[0], "data": creation_code(TRYER_RUNTIME), "gas": 500_000})
    chain.tryer = node.receipt(tx["deploy_tryer"])["contractAddress"]
    for name, flag in (("try_reverted_inner", 1), ("try_ok", 0)):
        tx[name] = node.send(**{"from": a[7], "to": chain.tryer, "gas": 300_000, "value": 5 * ETH // 100,
                                "data": "0x" + word(chain.forwarder) + word(a[8]) + word(flag)})
    tx["eth_2"] = node.send(**{"from": a[5], "to": a[6], "value": 12345})
    for i in range(3):  # a few more plain blocks so windows and resumption have room
        tx[f"eth_more_{i}"] = node.send(**{"from": a[6 + i], "to": a[7 + i], "value": 10**15 + i})
    for name, h in tx.items():
        assert node.receipt(h) is not None, name
    chain.last_block = node.head()
    return chain


@pytest.fixture(scope="module")
def chain(anvil_node: Node) -> Chain:
    return play_history(anvil_node)


def test_history_does_what_it_should(chain: Chain) -> None:
    """The scripted contracts behave as their comments say (else later tests prove nothing)."""
    node, a = chain.node, chain.accounts
    status = {name: node.receipt(h)["status"] for name, h in chain.txs.items()}
    assert status["revert"] == status["forward_then_revert"] == status["token_overdraw"] == "0x0"
    assert all(v == "0x1" for k, v in status.items()
               if k not in ("revert", "forward_then_revert", "token_overdraw"))
    assert node.token_balance(chain.token, a[2], chain.last_block) == 500 * ETH - 123
    assert node.token_balance(chain.token, a[5], chain.last_block) == 123
    blocks = {node.receipt(chain.txs[n])["blockNumber"] for n in
              ("token_transfer", "forward", "revert", "forward_then_revert", "token_overdraw")}
    assert len(blocks) == 1
    assert node.balance(chain.forwarder, chain.last_block) == 0
    assert node.balance(chain.reverter, chain.last_block) == ETH // 10
    assert node.balance(chain.tryer, chain.last_block) == 5 * ETH // 100  # kept from the reverted call
