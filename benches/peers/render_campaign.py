"""Peer of benches/campaigns.rs: Jinja2 renders the same campaign template (subject,
HTML autoescaped, text) with the same merge values, one message per line of
values.ndjson; prints microseconds per message. Usage: render_campaign.py DIR"""
import json
import sys
import time

import jinja2


def nest(flat):
    out = {}
    for key, value in flat.items():
        group, _, leaf = key.partition(".")
        if leaf:
            out.setdefault(group, {})[leaf] = value
        else:
            out[group] = value
    return out


def main():
    base = sys.argv[1]
    env_html = jinja2.Environment(autoescape=True)
    env_text = jinja2.Environment(autoescape=False)
    read = lambda name: open(f"{base}/{name}").read()
    subject = env_text.from_string(read("subject.j2"))
    html = env_html.from_string(read("html.j2"))
    text = env_text.from_string(read("text.j2"))
    rows = [nest(json.loads(line)) for line in open(f"{base}/values.ndjson")]
    started = time.perf_counter()
    size = 0
    for row in rows:
        size += len(subject.render(row)) + len(html.render(row)) + len(text.render(row))
    elapsed = time.perf_counter() - started
    print(f"{elapsed * 1e6 / len(rows):.3f}")


main()
