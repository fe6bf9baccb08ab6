"""Write the notebooks from their cells below, run them, and store their outputs.

The notebooks are the product; this file is how they are edited: change the
cells here, run ``make notebooks``, and commit both. Running every cell here
is also what gives the stored outputs nbval checks (they are deterministic:
seeded simulations, step-mode sessions, no wall-clock values).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from punchlab.classroom import SERVER_ENV

HERE = Path(__file__).resolve().parent

Cell = tuple[str, str]


def md(text: str) -> Cell:
    return ("markdown", text.strip())


def code(text: str) -> Cell:
    return ("code", text.strip())


NOTEBOOKS: dict[str, list[Cell]] = {}

# ---------------------------------------------------------------------------------------
NOTEBOOKS["01-what-a-nat-does"] = [
    md("""
# 1. What a NAT does to a packet

Your laptop has a *private* address, like `10.0.1.2`. Thousands of other
laptops have the same one, so the internet cannot route to it. The router
between your network and the internet does **Network Address Translation**:
when a packet goes out, it rewrites the private source `10.0.1.2:5000` into
its own *public* address, say `198.51.100.1:5000`, and remembers that it did,
in a **mapping table**. When an answer comes back to `198.51.100.1:5000`, the
table tells it where to send it inside.

This notebook runs on punchlab's simulated internet: no real network needed,
and every run is the same (the simulation is seeded).
"""),
    code("""
from punchlab.sim import Network

net = Network(seed=0)
server = net.add_server()                                   # public: 203.0.113.1
nat = net.add_nat("NAT A", "port-restricted-cone")          # a typical home router
alice = net.add_peer("Alice", behind=nat)                   # private: 10.0.1.2:5000
print("Alice's own address:", alice.address)
print("her NAT's public address:", nat.outside_ip)
"""),
    md("""
The mapping table starts empty: nobody inside has sent anything yet.
"""),
    code("""
print(nat.show(net.now))
"""),
    md("""
Alice registers with the rendezvous server (the next notebook explains why).
That sends one UDP datagram out through her NAT.
"""),
    code("""
alice.register()
net.run_for(1.0)
print(nat.show(net.now))
"""),
    md("""
Now there is a row: inside `10.0.1.2:5000` is outside `198.51.100.1:5000`, and the
NAT remembers *who* Alice talked to (the server). The trace shows the
rewrite: Alice sent from her private address, the NAT `translated` it, and
the server saw the packet coming from the public one.
"""),
    code("""
print(net.trace.table())
"""),
    md("""
## Unsolicited packets are dropped

A stranger on the internet, Mallory, now sends a datagram to that public
port. A **port-restricted cone** NAT only lets in packets from an address
*and port* that Alice has sent to herself, so Mallory's packet is dropped.
This is what makes peer-to-peer hard: nobody outside can reach Alice first.
"""),
    code("""
from punchlab.messages import Message, MessageType, encode

mallory = net.add_peer("Mallory")                           # a public address, no NAT
net.send("Mallory", mallory.address, (nat.outside_ip, 5000), encode(Message(MessageType.HELLO)))
net.run_for(1.0)
print(net.trace.filter(actors=["Mallory", "NAT A"]).table(limit=6))
"""),
    md("""
The same story as a picture: one lifeline per host, time running down, an
arrow per datagram from when it left to when it arrived. It bends where the
NAT rewrote it, and ends in a red cross where it was dropped.
"""),
    code("""
from punchlab.diagram import sequence_diagram

_ = sequence_diagram(net.trace, addresses=True)
"""),
    md("""
**Try it:** change `"port-restricted-cone"` to `"full-cone"` in the second cell
and run the notebook again. A full cone NAT lets *anyone* in once a mapping
exists: Mallory's packet reaches Alice. Next: [2. Registration](02-registration.ipynb).
"""),
]

# ---------------------------------------------------------------------------------------
NOTEBOOKS["02-registration"] = [
    md("""
# 2. Registration: how the server learns your public address

Alice cannot know her public address: only her NAT knows it. So she sends a
`REGISTRATION` datagram to a server on the public internet. The server sees
where the datagram *came from*, which is the NAT's public address and port,
stores it, and answers with an identifier that others can use to find her.

Each datagram is one small JSON object, the same as in the original Go
implementation:
"""),
    code("""
from punchlab.messages import Message, MessageType, encode

encode(Message(MessageType.REGISTRATION, ""))
"""),
    code("""
from punchlab.sim import Network

net = Network(seed=0)
server = net.add_server()
alice = net.add_peer("Alice", behind=net.add_nat("NAT A", "port-restricted-cone"))
bob = net.add_peer("Bob", behind=net.add_nat("NAT B", "symmetric"))
alice.register()
bob.register()
net.run_for(1.0)
print("Alice's ID:", alice.id)
print("Bob's ID:  ", bob.id)
"""),
    md("""
The server's table holds what it saw: not `10.0.1.2`, but the NATs' public
addresses. That is the address it will give to anyone who wants to talk to
Alice.
"""),
    code("""
for registration in server.registrations:
    print(registration.peer_id, "->", registration.address)
"""),
    code("""
from punchlab.diagram import sequence_diagram

_ = sequence_diagram(net.trace, types=["REGISTRATION"], addresses=True)
"""),
    md("""
## UDP loses packets

UDP promises nothing: a datagram can be lost. punchlab's peer sends
`REGISTRATION` again after 0.2 s, 0.4 s, 0.8 s… until the server answers (the
server gives the same identifier to a repeated request from the same address).
On a link that loses half of all datagrams:
"""),
    code("""
from punchlab.sim import LinkConfig

lossy = Network(seed=3, internet=LinkConfig(latency=0.02, loss=0.5))
lossy.add_server()
carol = lossy.add_peer("Carol", behind=lossy.add_nat("NAT C", "full-cone"))
carol.register()
lossy.run_until(lambda: carol.id is not None, 10.0)
print(lossy.trace.filter(actors=["Carol", "internet"], types=["REGISTRATION"]).table())
"""),
    md("""
The peer also sends a `HEART-BEAT` to the server every 3 seconds. It keeps
the NAT's mapping alive (NATs forget silent mappings after a while) and tells
the server Alice is still there; a registration expires after 30 s of silence.

Next: [3. The rendezvous](03-rendezvous.ipynb).
"""),
]

# ---------------------------------------------------------------------------------------
NOTEBOOKS["03-rendezvous"] = [
    md("""
# 3. The rendezvous: introducing two peers

Alice wants to talk to Bob. She knows Bob's identifier (he told her, say, in
class). She asks the server over HTTP:

    POST /start-communication   {"peerInitiator": ALICE_ID, "peer": BOB_ID}

The server answers Alice with Bob's public address, and at the same moment
sends Bob an `INITIATE_CHAT` datagram carrying Alice's public address. Now
both know where to aim.
"""),
    code("""
from punchlab.sim import Network

net = Network(seed=0)
server = net.add_server()
alice = net.add_peer("Alice", behind=net.add_nat("NAT A", "port-restricted-cone"))
bob = net.add_peer("Bob", behind=net.add_nat("NAT B", "port-restricted-cone"))
alice.register()
bob.register()
net.run_for(1.0)
start = net.now
alice.connect(bob.id)
net.run_for(0.1)
print(net.trace.filter(types=["HTTP", "INITIATE_CHAT"], time_range=(start, net.now)).table())
"""),
    md("""
Read the rows: Alice's HTTP request reaches the server after one trip; the
server sends `INITIATE_CHAT` to Bob's public address and the HTTP answer to
Alice. The payload of `INITIATE_CHAT` is Alice's public `ip:port`, exactly what
the server saw when she registered.
"""),
    code("""
for event in net.trace.filter(types=["INITIATE_CHAT"], kinds=["sent"]):
    print(event.payload)
"""),
    code("""
from punchlab.diagram import sequence_diagram

_ = sequence_diagram(net.trace, time_range=(start - 0.001, start + 0.09))
"""),
    md("""
## When something is wrong

punchlab's server checks before it answers. An unknown identifier gets
`404` and nothing is sent over UDP (the original answered `200` and left the
other side waiting forever). Carol, who joins now, asks for an identifier
nobody has:
"""),
    code("""
carol = net.add_peer("Carol", behind=net.add_nat("NAT C", "port-restricted-cone"))
carol.register()
net.run_for(1.0)
carol.connect("no-such-peer")
net.run_for(0.1)
print(carol.errors[-1])
"""),
    md("""
Next: [4. Hole punching](04-hole-punching.ipynb).
"""),
]

# ---------------------------------------------------------------------------------------
NOTEBOOKS["04-hole-punching"] = [
    md("""
# 4. Punching the hole: HELLO and SUCCESS

Both peers now know each other's public address, but each NAT still drops
packets from anyone its inside host has not talked to. The trick: **both send
at once.** Alice's `HELLO` to Bob goes out through her NAT, which now expects
answers from Bob; Bob's `HELLO` to Alice does the same on his side. The first
`HELLO`s may be dropped by the other NAT (it was not open yet), but as soon as
both NATs have seen an outgoing packet, `HELLO`s get through. A peer answers a
`HELLO` with `SUCCESS`; a peer that receives `SUCCESS` is connected.
"""),
    code("""
from punchlab.sim import punch

result = punch("port-restricted-cone", "port-restricted-cone", seed=0)
print(result.summary())
"""),
    code("""
from punchlab.diagram import sequence_diagram

_ = sequence_diagram(result.trace, types=["HELLO", "SUCCESS", "TEXT"], collapse=True)
"""),
    md("""
## The original algorithm against punchlab's

The original Go client waited 3 seconds before its first `HELLO`, then sent one
every 3 seconds. punchlab sends the first `HELLO` at once, retries after 20,
40, 80 ms… and answers a `HELLO` with `SUCCESS` *and* a `HELLO` of its own, so
the other side does not wait for its own retry. Same NATs, same network:
"""),
    code("""
original = punch("port-restricted-cone", "port-restricted-cone", seed=0, seed_compatible=True)
for name, run in (("original", original), ("punchlab", result)):
    print(f"{name:9} {run.time_to_connect * 1000:7.0f} ms")
"""),
    code("""
import matplotlib.pyplot as plt

fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 6), layout="constrained")
_ = sequence_diagram(original.trace, left, types=["HELLO", "SUCCESS"], title="original: 3 s ticker")
_ = sequence_diagram(result.trace, right, types=["HELLO", "SUCCESS"], title="punchlab")
"""),
    md("""
## The peer's state machine

Everything a peer does follows one table of transitions (the code, the tests
and this picture all read the same table):
"""),
    code("""
from punchlab.diagram import state_diagram

_ = state_diagram(highlight=result.state_a)
"""),
    md("""
Next: [5. Chatting](05-chat.ipynb).
"""),
]

# ---------------------------------------------------------------------------------------
NOTEBOOKS["05-chat"] = [
    md("""
# 5. Chatting, with your own hands

Two peers, Alice and Bob, each behind a port-restricted cone NAT on the
simulated internet. Use the panels:

1. press **Register** on both (each gets an ID);
2. copy Bob's ID (one click selects it) into Alice's *Peer ID* box and press **Connect**;
3. type a line and press **Enter** (or **Send**): it appears on the other side.

The simulation moves only while something is happening, so every run is the
same; the diagram under the panels redraws as packets flow.
"""),
    code("""
from punchlab.sim import Network
from punchlab.sim.session import SimSession
from punchlab.widgets import LiveDiagram, PeerPanel, ServerPanel, side_by_side

net = Network(seed=0)
server = net.add_server()
alice_sim = net.add_peer("Alice", behind=net.add_nat("NAT A", "port-restricted-cone"))
bob_sim = net.add_peer("Bob", behind=net.add_nat("NAT B", "port-restricted-cone"))
session = SimSession(net)
alice, bob = PeerPanel(session.peer(alice_sim)), PeerPanel(session.peer(bob_sim))
"""),
    code("""
side_by_side(alice, bob)
"""),
    code("""
diagram = LiveDiagram(net.trace, collapse=True).follow(alice.peer, bob.peer)
diagram
"""),
    md("""
Try a wrong ID in the *Peer ID* box: the status line says the server does not
know it. Try changing `"port-restricted-cone"` to `"symmetric"` for Bob and
running the notebook again: the punch fails, and the diagram shows where.

## Without clicking

The same steps from code, with two more peers on a simulated internet of
their own (this is what the panels do when you click):
"""),
    code("""
from punchlab.widgets import connect_panels

net_cd = Network(seed=1)
net_cd.add_server()
carol_sim = net_cd.add_peer("Carol", behind=net_cd.add_nat("NAT C", "full-cone"))
dave_sim = net_cd.add_peer("Dave", behind=net_cd.add_nat("NAT D", "restricted-cone"))
session_cd = SimSession(net_cd)
carol, dave = PeerPanel(session_cd.peer(carol_sim)), PeerPanel(session_cd.peer(dave_sim))
await connect_panels(carol, dave)
await carol.send("hi Dave")
print("Carol:", carol.status_text)
print("Dave: ", dave.status_text)
print("Dave's chat log:", dave.log.value)
"""),
    md("""
## On real UDP sockets

The same panels also drive real peers. Here a rendezvous server and two peers
run inside this notebook's kernel on this machine's loopback interface: real
datagrams, real sockets, no NAT. The server panel shows what the teacher
sees. (Set `PUNCHLAB_SERVER`, e.g. to `http://192.168.1.20:8088`, before
starting JupyterLab, and the two peers use that server instead; the teacher
then sees them in the log of `punchlab serve`.)
"""),
    code("""
from punchlab.aio import Peer
from punchlab.classroom import notebook_server

rendezvous = await notebook_server()   # its own, on 127.0.0.1, unless PUNCHLAB_SERVER is set
real_alice = PeerPanel(Peer(rendezvous.url, host=rendezvous.peer_host, name="Alice (real)"))
real_bob = PeerPanel(Peer(rendezvous.url, host=rendezvous.peer_host, name="Bob (real)"))
teacher = ServerPanel(rendezvous.server) if rendezvous.server else None
"""),
    code("""
side_by_side(real_alice, real_bob)
"""),
    code("""
teacher
"""),
    md("""
Next: [6. NAT types](06-nat-types.ipynb).
"""),
]

# ---------------------------------------------------------------------------------------
NOTEBOOKS["06-nat-types"] = [
    md("""
# 6. NAT types, and which pairs can talk

RFC 4787 describes a NAT by three choices:

* **mapping**: does it reuse the same public port for every destination
  (*endpoint-independent*), or open a new one per destination address, or per
  address and port (*address-and-port-dependent*: the "symmetric" NAT)?
* **filtering**: who may send in through a mapping: anyone, only addresses
  the inside host has sent to, or only exact address:port pairs?
* **port allocation**: keep the inside port if free, count up, or pick at random.

The classic names are presets of the first two:
"""),
    code("""
from punchlab.sim import PRESETS

for name, config in PRESETS.items():
    print(f"{name:21} mapping {config.mapping.value:27} filtering {config.filtering.value}")
"""),
    md("""
Every pair, both ways round, with punchlab's algorithm and with the
original one:
"""),
    code("""
from punchlab.sim import success_matrix

ours = success_matrix()
original = success_matrix(seed_compatible=True)
print(ours.text())
"""),
    code("""
import matplotlib.pyplot as plt

from punchlab.diagram import matrix_diagram

fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.6), layout="constrained")
for ax, matrix, title in ((axes[0], original, "original algorithm"), (axes[1], ours, "punchlab")):
    _ = matrix_diagram(matrix, ax, title=title, rows="Alice's NAT", columns="Bob's NAT")
"""),
    md("""
## Why the original fails against a symmetric NAT

A symmetric NAT opens a **new public port for every destination**. The port
the server saw was opened for the server only. The original client keeps
sending to that port, so its `HELLO`s are dropped. punchlab answers the port a
valid `HELLO` *actually came from* (a "peer-reflexive" address, in ICE's
words), which rescues every pair where the other side's filter lets that new
port in: look at the restricted-cone row.
"""),
    code("""
from punchlab.diagram import sequence_diagram
from punchlab.sim import punch

failing = original.cells[("restricted-cone", "symmetric")]
rescued = ours.cells[("restricted-cone", "symmetric")]
print("original:", failing.summary())
print("punchlab:", rescued.summary())
"""),
    code("""
fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 6), layout="constrained")
_ = sequence_diagram(
    failing.trace, left, types=["HELLO", "SUCCESS"], time_range=(3.0, 3.3), collapse=True,
    title="original (its first HELLO leaves after 3 s)",
)
_ = sequence_diagram(
    rescued.trace, right, types=["HELLO", "SUCCESS"], collapse=True, title="punchlab"
)
"""),
    md("""
A port-restricted cone NAT facing a symmetric one still fails: the new port
is not one the port-restricted side ever sent to, so its filter drops it.
That needs port prediction or a relay (TURN), which is beyond hole punching.
Next: [7. Classroom mode](07-classroom.ipynb).
"""),
]

# ---------------------------------------------------------------------------------------
NOTEBOOKS["07-classroom"] = [
    md("""
# 7. Classroom mode: real peers on a real network

In class, the teacher runs the rendezvous server on a machine everyone can
reach (HTTP port 8088 and UDP port 8089 open):

    punchlab serve

It prints the address students should use and logs every registration and
introduction. Each student then either runs `punchlab chat --server
http://TEACHER:8088` in a terminal, or uses the panel below.

Run on its own, this notebook needs no network: it starts its own server
inside this kernel, on this machine's loopback address, and the panel talks
to it. The next cell turns it into the real thing.
"""),
    code("""
import os

# Students: the address the teacher's `punchlab serve` printed, e.g. "http://192.168.1.20:8088"
# (or set PUNCHLAB_SERVER before starting JupyterLab). Empty: this notebook's own server.
SERVER_URL = os.environ.get("PUNCHLAB_SERVER", "")
# Teacher: "0.0.0.0" opens this notebook's own server to the class on ports 8088 (HTTP)
# and 8089 (UDP); "127.0.0.1" keeps it on this machine, on ports the system picks.
CLASS_HOST = "127.0.0.1"
"""),
    md("""
## The teacher's view

Unless `SERVER_URL` names another machine's server, the rendezvous server
runs here, inside this kernel, and this panel shows every registration and
introduction as it happens: it is what `punchlab serve` logs.
"""),
    code("""
from punchlab.classroom import notebook_server
from punchlab.widgets import ServerPanel

rendezvous = await notebook_server(SERVER_URL, host=CLASS_HOST)
teacher = ServerPanel(rendezvous.server) if rendezvous.server else None
teacher
"""),
    md("""
## Your panel

Register, give your ID to a classmate (or take theirs), and connect. If you
are on the same LAN the NAT question does not arise; at home, behind your
router, it does: compare with notebook 6. A classmate without the notebook
runs `punchlab chat --server` with the same address.
"""),
    code("""
from punchlab.aio import Peer
from punchlab.widgets import PeerPanel

me = PeerPanel(Peer(rendezvous.url, host=rendezvous.peer_host, name="me"))
me
"""),
    md("""
## Drawing the whole class's traffic afterwards

`punchlab chat --trace alice.jsonl` and `punchlab serve --trace server.jsonl`
save every datagram. Collected from everyone into this notebook's folder, they
merge into one picture (all clocks are close enough on one LAN). Without them,
the cell draws what this kernel's own server and panel did.
"""),
    code("""
from pathlib import Path

from punchlab.diagram import sequence_diagram
from punchlab.trace import Trace

collected = [Trace.load(path) for path in sorted(Path().glob("*.jsonl"))]
own = [me.peer.trace] + ([rendezvous.server.trace] if rendezvous.server else [])
merged = Trace.merge(*(collected or own))
if len(merged):
    _ = sequence_diagram(merged, collapse=True)
else:
    print("Nothing has crossed the network yet: register and connect above, then run this again.")
"""),
]

# ---------------------------------------------------------------------------------------
NOTEBOOKS["08-real-nats"] = [
    md("""
# 8. Real NATs: the Linux kernel's own

Everything so far ran on the simulator. Is it right? This notebook builds a
small real network inside this machine with Linux *network namespaces*: a
box for the server, one for each NAT (the kernel's connection-tracking NAT,
configured with nftables), one for each peer, joined by virtual Ethernet
cables. The real server and peers run in them as separate processes.

**It needs Linux and root** (and the `ip` and `nft` commands): a Linux
machine you control, not Windows or macOS, not Binder. Where it cannot run,
the cells say why and do nothing. Its numbers change from run to run (real time, real ports),
so the automatic notebook check runs these cells but does not compare them.
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
from punchlab import netlab

print("the lab can run here" if netlab.available() else "; ".join(netlab.lab_problems()))
"""),
    md("""
Two peers behind port-restricted cone NATs (plain Linux masquerading), then a
port-restricted cone against a symmetric NAT (masquerading with random ports):
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
pairs = [("port-restricted-cone", "port-restricted-cone"), ("port-restricted-cone", "symmetric")]
results = {}
if netlab.available():
    for pair in pairs:
        with netlab.Lab(*pair) as lab:
            results[pair] = await lab.apunch(punch_timeout=3.0)
        print(results[pair].summary())
"""),
    md("""
The merged trace of the server's and both peers' processes, drawn like the
simulator's. The kernel NATs do not write traces, so there is no NAT
lifeline: look at the addresses instead (the server sees `203.0.113.11`, the
NAT, never `10.0.1.2`).
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
from punchlab.diagram import sequence_diagram

for pair, result in results.items():
    _ = sequence_diagram(result.trace, collapse=True, title=result.summary())
"""),
    md("""
From a terminal, as root: `punchlab netlab punch --nat-a full-cone --nat-b
symmetric` and `punchlab netlab matrix`, which runs every pair on the real
NATs and compares each with the simulator's prediction.
"""),
]


#: Where nbformat keeps the widgets' state, and how an output shows a widget.
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def new_notebook(name: str, cells: list[Cell]) -> nbformat.NotebookNode:
    """The notebook's cells, with ids that stay the same from one build to the next."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.cells = [
        nbformat.v4.new_markdown_cell(text)
        if kind == "markdown"
        else nbformat.v4.new_code_cell(text)
        for kind, text in cells
    ]
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{name[:2]}-{index:02d}"
    return notebook


def execute(notebook: nbformat.NotebookNode) -> None:
    """Run every cell but the ``# NBVAL_SKIP`` ones, without recording when each ran."""
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(HERE)}},
        skip_cells_with_tag="nbval-skip",
        record_timing=False,  # timestamps would change every stored notebook on every build
    )
    skipped = [c for c in notebook.cells if c.cell_type == "code" and "# NBVAL_SKIP" in c.source]
    for cell in skipped:
        cell.metadata.setdefault("tags", []).append("nbval-skip")
    client.execute()
    for cell in skipped:
        cell.metadata["tags"].remove("nbval-skip")
        if not cell.metadata["tags"]:
            del cell.metadata["tags"]


def stable_widget_ids(notebook: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """Replace the kernel's random widget ids by ids derived from the notebook's name.

    A widget's id is a fresh UUID in every kernel; stored as it is, rebuilding
    an unchanged notebook would change it in git. Widgets are made in the same
    order every run, so the n-th one gets the same id every time.
    """
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    ids = list(state)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            model_id = output.get("data", {}).get(WIDGET_VIEW, {}).get("model_id")
            if model_id is not None and model_id not in ids:
                ids.append(model_id)
    stable = {
        old: hashlib.sha256(f"punchlab/{name}/{n}".encode()).hexdigest()[:32]
        for n, old in enumerate(ids)
    }
    text = json.dumps(notebook)
    text = re.sub(
        r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])", lambda m: stable.get(m.group(), m.group()), text
    )
    return nbformat.from_dict(json.loads(text))


def build(names: list[str]) -> None:
    # The stored outputs are those of a machine with no class: each notebook's own server.
    os.environ.pop(SERVER_ENV, None)
    for name, cells in NOTEBOOKS.items():
        if names and name not in names:
            continue
        notebook = new_notebook(name, cells)
        execute(notebook)
        path = HERE / f"{name}.ipynb"
        nbformat.write(stable_widget_ids(notebook, name), path)
        print(f"wrote {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    build(sys.argv[1:])
