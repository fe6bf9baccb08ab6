# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. Chatting, with your own hands
#
# By the end of this notebook you will be able to:
#
# * register, connect and chat from peer panels, on the simulator and on
#   real UDP sockets;
# * drive the same steps from code, without clicking;
# * read a broken peer's sequence diagram and name the switch that is off.
#
# Two peers, Alice and Bob, each behind a port-restricted cone NAT on the
# simulated internet. Use the panels:
#
# 1. press **Register** on both (each gets an ID);
# 2. copy Bob's ID (one click selects it) into Alice's *Peer ID* box and press **Connect**;
# 3. type a line and press **Enter** (or **Send**): it appears on the other side.
#
# The simulation moves only while something is happening, so every run is the
# same; the diagram under the panels redraws as packets flow.

# %%
from punchlab.sim import Network
from punchlab.sim.session import SimSession
from punchlab.widgets import LiveDiagram, PeerPanel, ServerPanel, side_by_side

net = Network(seed=0)
server = net.add_server()
alice_sim = net.add_peer("Alice", behind=net.add_nat("NAT A", "port-restricted-cone"))
bob_sim = net.add_peer("Bob", behind=net.add_nat("NAT B", "port-restricted-cone"))
session = SimSession(net)
alice, bob = PeerPanel(session.peer(alice_sim)), PeerPanel(session.peer(bob_sim))

# %%
side_by_side(alice, bob)

# %%
diagram = LiveDiagram(net.trace, collapse=True).follow(alice.peer, bob.peer)
diagram

# %% [markdown]
# Try a wrong ID in the *Peer ID* box: the status line says the server does not
# know it. Try changing `"port-restricted-cone"` to `"symmetric"` for Bob and
# running the notebook again: the punch fails, and the diagram shows where.
#
# **Predict first**, from what the matrix of notebook 5 showed: if Bob's NAT
# is symmetric (`APDM/APDF`) and Alice's is a restricted cone (`EIM/ADF`),
# can they connect and chat?

# %%
from punchlab.exercises import connect_question

WHAT_IF_A, WHAT_IF_B = "restricted-cone", "symmetric"
connect_question(
    lambda: WHAT_IF_A,
    lambda: WHAT_IF_B,
    "Alice behind a restricted cone NAT, Bob behind a symmetric one: will they connect and chat?",
)

# %%
from punchlab.peer import PeerConfig
from punchlab.sim import punch

PUNCH_ALONE = PeerConfig(ladder=False)  # as in notebook 5; notebook 10 climbs further
print(punch(WHAT_IF_A, WHAT_IF_B, seed=0, config=PUNCH_ALONE).summary())

# %% [markdown]
# ## Without clicking
#
# The same steps from code, with two more peers on a simulated internet of
# their own (this is what the panels do when you click). Carol is behind a
# full cone NAT, Dave behind a restricted cone one.
#
# **Predict first**: Carol connects to Dave and sends him five lines. How
# many of them will reach Dave?

# %%
from punchlab.exercises import chat_lines_question

NAT_C_KIND, NAT_D_KIND, LINES = "full-cone", "restricted-cone", 5
chat_lines_question(lambda: NAT_C_KIND, lambda: NAT_D_KIND, lambda: LINES, lambda: 1)

# %%
print(punch(NAT_C_KIND, NAT_D_KIND, seed=1, texts=LINES, config=PUNCH_ALONE).summary())

# %% [markdown]
# The same from the panels, line by line:

# %%
from punchlab.widgets import connect_panels

net_cd = Network(seed=1)
net_cd.add_server()
carol_sim = net_cd.add_peer("Carol", behind=net_cd.add_nat("NAT C", NAT_C_KIND))
dave_sim = net_cd.add_peer("Dave", behind=net_cd.add_nat("NAT D", NAT_D_KIND))
session_cd = SimSession(net_cd)
carol, dave = PeerPanel(session_cd.peer(carol_sim)), PeerPanel(session_cd.peer(dave_sim))
await connect_panels(carol, dave)
await carol.send("hi Dave")
print("Carol:", carol.status_text)
print("Dave: ", dave.status_text)
print("Dave's chat log:", dave.log.value)

# %% [markdown]
# ## On real UDP sockets
#
# The same panels also drive real peers. Here a rendezvous server and two peers
# run inside this notebook's kernel on this machine's loopback interface: real
# datagrams, real sockets, no NAT. The server panel shows what the teacher
# sees. (Set `PUNCHLAB_SERVER`, e.g. to `http://192.168.1.20:8088`, before
# starting JupyterLab, and the two peers use that server instead; the teacher
# then sees them in the log of `punchlab serve`.)

# %%
from punchlab.aio import Peer
from punchlab.classroom import notebook_server

rendezvous = await notebook_server()  # its own, on 127.0.0.1, unless PUNCHLAB_SERVER is set
real_alice = PeerPanel(Peer(rendezvous.url, host=rendezvous.peer_host, name="Alice (real)"))
real_bob = PeerPanel(Peer(rendezvous.url, host=rendezvous.peer_host, name="Bob (real)"))
teacher = ServerPanel(rendezvous.server) if rendezvous.server else None

# %%
side_by_side(real_alice, real_bob)

# %%
teacher

# %% [markdown]
# ## Exercise: find the bug in a broken peer
#
# When two peers cannot connect, or connect and then lose every line, the
# sequence diagram usually says why. Here are four runs in which Alice's
# peer is a *mystery peer*: either healthy, or punchlab's peer with one of
# three switches of its punching policy (`punchlab.policy.Policy`; notebooks
# 4 and 5 showed what each one does) turned off:
#
# * `backs_off`: punchlab's quick `HELLO` schedule (off: the original's
#   3 s ticker);
# * `answers_hello_with_hello`: answer a `HELLO` with a `HELLO` as well as
#   `SUCCESS` (off: `SUCCESS` only);
# * `adopts_peer_reflexive`: talk to the address a valid `HELLO` came from
#   (off: keep the address the server gave).
#
# In each run both register, Alice asks for Bob, both punch, and then each
# connected side sends three lines. Bob is always healthy. Look at the four
# diagrams first: in each, what does Alice do that a healthy peer would not?

# %%
from punchlab.diagram import sequence_diagram
from punchlab.exercises import EXERCISES

mysteries = EXERCISES["06-find-the-bug"]().cases()
for case in mysteries:
    (trace,) = case.args
    _ = sequence_diagram(trace, types=["HELLO", "SUCCESS", "TEXT"], collapse=True, title=case.name)

# %% [markdown]
# Now write `diagnose(trace)`: from a run's trace alone, return the name of
# the switch that is off in Alice's peer, or `"none"` if she is healthy. The
# trace is a list of events; each has `time` (seconds), `kind` (`"sent"`,
# `"delivered"`, `"dropped"`, ...), `actor` (who saw it: `"Alice"`, `"NAT A"`,
# ...), `src` and `dst` (addresses as text, as that actor saw them),
# `msg_type` (`"HELLO"`, `"TEXT"`, `"HTTP"`, ...) and `payload`. Alice's
# request to the server is the `"HTTP"` event she sent whose payload
# mentions `start-communication`. The check runs your function on the four
# runs above; the teacher's version also tries other runs, with other NATs.


# %% tags=["exercise-stub", "exercise:06-find-the-bug"]
def diagnose(trace):
    raise NotImplementedError


# %% tags=["exercise-check", "exercise:06-find-the-bug"]
from punchlab.exercises import EXERCISES

exercise = EXERCISES["06-find-the-bug"]()
exercise.check()

# %% [markdown]
# ## Summary
#
# * The panels and the code do the same three steps: register, connect,
#   send; the live diagram draws every datagram as it flows.
# * The same panels drive real peers on real sockets; the server panel is
#   what a teacher's `punchlab serve` logs.
# * A broken peer shows itself in its sequence diagram: a late first
#   `HELLO`, a `HELLO` answered without a `HELLO`, or lines sent to an
#   address the partner never sent from.
#
# ## What comes next
#
# In [7. Classroom mode](07-classroom.ipynb) the whole class joins one
# rendezvous server, and the NATs in the way are real ones.
