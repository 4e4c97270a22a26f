"""Flow-based tunnels driven by a controller, as Neutron's OVS agent does it.

Each switch has local VM ports and one tunnel port with key="flow" and
remote_ip="flow". The plan (JSON in $RVS_TUNNEL_PLAN) says, per datapath id:
the tunnel port, the local VMs (port, MAC, VNI) and the remote VMs (MAC, VNI,
the underlay address of their host). On connect the app installs:
  - from a local VM to a remote VM's MAC: set tunnel_id=VNI, tun_ipv4_dst=HOST,
    output to the tunnel port (per destination);
  - broadcast from a local VM: the same towards every host with that VNI;
  - from the tunnel with tunnel_id=VNI to a local MAC (or broadcast): out the VM's port.
Nothing else forwards (table-miss drops), so traffic follows the controller's flows.
"""
import json
import os

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, set_ev_cls
from os_ken.ofproto import ofproto_v1_3

LOG = os.environ.get("RVS_OSKEN_LOG", "/dev/null")
BROADCAST = "ff:ff:ff:ff:ff:ff"


def note(line):
    with open(LOG, "a") as f:
        f.write(line + "\n")


class TunnelOverlay(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan = json.loads(os.environ["RVS_TUNNEL_PLAN"])

    def add_flow(self, dp, priority, match, actions):
        ofp, parser = dp.ofproto, dp.ofproto_parser
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
        dp.send_msg(parser.OFPFlowMod(datapath=dp, priority=priority, match=match,
                                      instructions=inst))

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def features(self, ev):
        dp = ev.msg.datapath
        parser = dp.ofproto_parser
        plan = self.plan.get("%016x" % dp.id)
        if plan is None:
            note("unknown datapath %016x" % dp.id)
            return
        tun = plan["tunnel_port"]
        for vm in plan["local"]:
            port, mac, vni = vm["port"], vm["mac"], vm["vni"]
            # Decapsulated traffic of this VNI to this VM, and its broadcasts.
            for dst in (mac, BROADCAST):
                self.add_flow(dp, 100,
                              parser.OFPMatch(in_port=tun, tunnel_id=vni, eth_dst=dst),
                              [parser.OFPActionOutput(port)])
            bcast = []
            for r in plan["remote"]:
                if r["vni"] != vni:
                    continue
                push = [parser.OFPActionSetField(tunnel_id=vni),
                        parser.OFPActionSetField(tun_ipv4_dst=r["host"])]
                self.add_flow(dp, 100, parser.OFPMatch(in_port=port, eth_dst=r["mac"]),
                              push + [parser.OFPActionOutput(tun)])
                bcast += push + [parser.OFPActionOutput(tun)]
            self.add_flow(dp, 90, parser.OFPMatch(in_port=port, eth_dst=BROADCAST), bcast)
        note("overlay installed on %016x" % dp.id)
