"""The routing rules of roi_serving::routing, written plainly in Python: the peer of
benches/routing.rs. Reads the bench's generated input (agents, rules, alerts), routes the
alerts one at a time with the same semantics, applies each decision's load, and prints a
timing summary line, then one chosen agent id per alert (empty when none).

Usage: python3 benches/peers/routing.py INPUT.json
"""
import json
import sys
import time


def route(alert, agents, rules, state):
    with_room = [a for a in agents if a["open"] < a["capacity"]]
    if not with_room:
        return None
    for rule in rules:
        name = rule["name"]
        cands = list(with_room)
        picked = None
        for s in rule["strategies"]:
            kind = s["strategy"]
            if kind == "territory":
                zip_ = alert["zip"]
                cands = [a for a in cands if zip_ is not None and zip_ in a["zips"]]
            elif kind == "skill":
                cands = [a for a in cands if alert["kind"] in a["skills"]]
            elif kind == "relationship":
                rec = alert["agent_of_record"]
                found = [a for a in cands if rec is not None and a["id"] == rec]
                if found:
                    picked = found[0]
                cands = []
            elif kind == "workload":
                picked = min(cands, key=lambda a: (a["open"] / a["capacity"], a["id"]))
            elif kind == "round_robin":
                cands.sort(key=lambda a: a["id"])
                last = state["cursors"].get(name)
                nxt = next((a for a in cands if last is not None and a["id"] > last), cands[0])
                state["cursors"][name] = nxt["id"]
                picked = nxt
            elif kind == "performance":
                floor = s.get("floor", 0.05)
                weights = state["weights"].setdefault(name, {})
                def w(a):
                    return max(round(max(min(a["conversion_rate"], 1.0), 0.0, floor) * 1000.0), 1)
                total = sum(w(a) for a in cands)
                best, best_v = cands[0], None
                for a in cands:
                    v = weights.get(a["id"], 0) + w(a)
                    weights[a["id"]] = v
                    if best_v is None or v > best_v or (v == best_v and a["id"] < best["id"]):
                        best, best_v = a, v
                weights[best["id"]] -= total
                picked = best
            if picked is not None or not cands:
                break
        if picked is None and cands:
            picked = min(cands, key=lambda a: (a["open"] / a["capacity"], a["id"]))
        if picked is not None:
            return picked
    return None


def main():
    data = json.load(open(sys.argv[1]))
    agents = data["agents"]
    for a in agents:
        a["zips"] = set(a["zips"])
        a["skills"] = set(a["skills"])
    state = {"cursors": {}, "weights": {}}
    nanos, chosen = [], []
    start = time.perf_counter()
    for alert in data["alerts"]:
        t = time.perf_counter_ns()
        a = route(alert, agents, data["rules"], state)
        nanos.append(time.perf_counter_ns() - t)
        if a is not None:
            a["open"] += 1
        chosen.append(a["id"] if a is not None else "")
    total = time.perf_counter() - start
    nanos.sort()
    pct = lambda p: nanos[round((len(nanos) - 1) * p)] / 1000.0
    print(f"python peer: {len(nanos)} decisions in {total:.2f} s; per decision p50 {pct(0.5):.1f} µs, "
          f"p99 {pct(0.99):.1f} µs, max {nanos[-1] / 1000.0:.1f} µs")
    print("\n".join(chosen))


if __name__ == "__main__":
    main()
