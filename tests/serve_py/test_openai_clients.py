"""`lantern serve` driven by real clients: the official `openai` package and curl.

Starts the `lantern` binary (LANTERN_BIN, default target/debug/lantern) on 127.0.0.1 with the
real SmolLM2 and checks completions with logprobs and echo, chat, streaming, steering through
the `lantern` extension field, OpenAI-style errors, and that SIGTERM drains a request in flight.
"""

import json
import math
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("LANTERN_BIN", str(ROOT / "target" / "debug" / "lantern"))
MODEL_DIR = Path(os.environ.get("LANTERN_MODEL_DIR", ROOT / "models"))
MODEL = str(MODEL_DIR / "SmolLM2-135M-Instruct.Q4_1.gguf")
NAME = "SmolLM2-135M-Instruct.Q4_1"
STEER = "add blocks.10.hook_resid_post value=2"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(*extra):
    port = free_port()
    proc = subprocess.Popen(
        [BIN, "serve", MODEL, "--quiet", "--port", str(port), *extra],
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"lantern serve exited: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if json.load(r)["status"] == "ok":
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("lantern serve did not come up")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    presets = tmp_path_factory.mktemp("serve") / "presets.json"
    presets.write_text(json.dumps({"push": [STEER]}))
    proc, url = start_server("--presets", str(presets))
    yield url
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0, timeout=300)


def lantern_top(prompt, k=5):
    """Lantern's own forward pass (the `lantern run` command): the top next tokens."""
    out = subprocess.run(
        [BIN, "run", MODEL, "--prompt", prompt, "--top-k", str(k), "--json", "--quiet"],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)["top"]


def test_models_lists_the_served_model(client):
    ids = [m.id for m in client.models.list().data]
    assert ids == [NAME]


def test_completion_logprobs_and_echo_agree_with_lanterns_forward_pass(client):
    prompt = "The capital of France is"
    r = client.completions.create(
        model=NAME, prompt=prompt, max_tokens=1, temperature=0, echo=True, logprobs=3
    )
    c = r.choices[0]
    assert c.text.startswith(prompt)
    lp = c.logprobs
    assert lp.token_logprobs[0] is None
    assert "".join(lp.tokens) == c.text
    assert lp.text_offset[0] == 0 and lp.text_offset[-1] == len(prompt)
    top = lantern_top(prompt, 3)
    # The generated (greedy) token is Lantern's most likely one, with its log-probability.
    assert lp.tokens[-1] == top[0]["token"]
    assert abs(lp.token_logprobs[-1] - math.log(top[0]["prob"])) <= 1e-4
    alts = lp.top_logprobs[-1]
    for t in top:
        assert abs(alts[t["token"]] - math.log(t["prob"])) <= 1e-4


def test_list_prompts_n_seed_and_stop(client):
    r = client.completions.create(
        model=NAME, prompt=["One, two,", "A, B,"], max_tokens=8, n=2, seed=5, temperature=0.8,
        stop=[","],
    )
    assert len(r.choices) == 4
    assert all("," not in c.text for c in r.choices)
    again = client.completions.create(
        model=NAME, prompt=["One, two,", "A, B,"], max_tokens=8, n=2, seed=5, temperature=0.8,
        stop=[","],
    )
    assert [c.text for c in r.choices] == [c.text for c in again.choices]


def test_chat_and_chat_streaming_agree(client):
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    r = client.chat.completions.create(model=NAME, messages=msgs, max_tokens=12, temperature=0)
    text = r.choices[0].message.content
    assert "Paris" in text
    stream = client.chat.completions.create(
        model=NAME, messages=msgs, max_tokens=12, temperature=0, stream=True
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == text
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_completion_streaming_concatenates_to_the_whole_answer(client):
    kw = dict(model=NAME, prompt="Once upon a time", max_tokens=10, temperature=0)
    whole = client.completions.create(**kw).choices[0].text
    parts = [c.choices[0].text for c in client.completions.create(stream=True, **kw)]
    assert "".join(parts) == whole


def test_steering_through_the_extension_field(client):
    kw = dict(model=NAME, prompt="Once upon a time, in a small village by the sea, there",
              max_tokens=8, temperature=0)
    plain = client.completions.create(**kw)
    own = client.completions.create(extra_body={"lantern": {"interventions": [STEER]}}, **kw)
    preset = client.completions.create(extra_body={"lantern": {"preset": "push"}}, **kw)
    assert own.model_extra["lantern"]["interventions"] == [STEER]
    assert preset.choices[0].text == own.choices[0].text != plain.choices[0].text


def test_errors_are_openai_errors(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="gpt-17", prompt="Hi")
    assert "gpt-17" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=NAME, prompt="Hi", max_tokens=-2)
    assert e.value.body["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError):
        client.completions.create(
            model=NAME, prompt="Hi", extra_body={"lantern": {"interventions": ["nonsense"]}}
        )
    assert client.completions.create(model=NAME, prompt="Hi", max_tokens=1).choices


def curl(*args):
    return subprocess.run(["curl", "-sS", *args], check=True, capture_output=True, text=True).stdout


def test_curl_completion_stream_and_malformed_json(server):
    body = json.dumps({"prompt": "The capital of France is", "max_tokens": 2, "temperature": 0})
    out = json.loads(curl("-H", "Content-Type: application/json", "-d", body,
                          server + "/v1/completions"))
    assert out["object"] == "text_completion" and out["choices"][0]["text"]
    sse = curl("-N", "-H", "Content-Type: application/json", "-d",
               json.dumps({"prompt": "Hello", "max_tokens": 3, "stream": True}),
               server + "/v1/completions")
    events = [l[len("data: "):] for l in sse.splitlines() if l.startswith("data: ")]
    assert events[-1] == "[DONE]" and len(events) >= 2
    bad = curl("-w", "\n%{http_code}", "-H", "Content-Type: application/json", "-d", "{oops",
               server + "/v1/completions")
    body, code = bad.rsplit("\n", 1)
    assert code == "400" and "error" in json.loads(body)


def test_sigterm_drains_a_request_in_flight():
    proc, url = start_server()
    body = json.dumps({"prompt": "Count: one, two,", "max_tokens": 30, "temperature": 0,
                       "stop": ["never-appears"], "stream": True})
    c = subprocess.Popen(["curl", "-sS", "-N", "-H", "Content-Type: application/json", "-d", body,
                          url + "/v1/completions"], stdout=subprocess.PIPE, text=True)
    first = c.stdout.readline()  # the stream has started: the request is in flight
    assert first.startswith("data: "), first
    proc.send_signal(signal.SIGTERM)
    rest = c.stdout.read()
    c.wait(timeout=120)
    assert proc.wait(timeout=120) == 0
    assert "data: [DONE]" in rest
    chunks = [json.loads(l[6:]) for l in (first + rest).splitlines()
              if l.startswith("data: {")]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
