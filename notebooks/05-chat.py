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
# # 5. Chatting, with your own hands
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
# **Predict first**: if Bob's NAT were symmetric and Alice's stayed a
# port-restricted cone, could they connect and chat?

# %%
from punchlab.exercises import connect_question

WHAT_IF_A, WHAT_IF_B = "port-restricted-cone", "symmetric"
connect_question(
    lambda: WHAT_IF_A,
    lambda: WHAT_IF_B,
    "Alice behind a port-restricted cone NAT, Bob behind a symmetric one: "
    "will they connect and chat?",
)

# %%
from punchlab.sim import punch

print(punch(WHAT_IF_A, WHAT_IF_B, seed=0).summary())

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
print(punch(NAT_C_KIND, NAT_D_KIND, seed=1, texts=LINES).summary())

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
# Next: [6. NAT types](06-nat-types.ipynb).
