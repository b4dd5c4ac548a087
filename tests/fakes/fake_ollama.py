#!/usr/bin/env python3
"""FAKE `ollama` for tests: a scripted stand-in, NOT Ollama, that runs no model.

llm-node's Ollama runtime starts `ollama serve` with OLLAMA_HOST, waits for it, pulls the model
with /api/pull when /api/show says it is absent, loads it, and forwards requests. No real Ollama
can be installed on the project's machines, so the end-to-end tests point `--ollama-bin` here.
It answers the endpoints the node uses in Ollama's shapes, with canned text.

Usage:  fake_ollama.py --version | fake_ollama.py serve
Environment (named OLLAMA_* because the node starts runtimes in a scrubbed environment that
passes only the OLLAMA_ family and a few system variables):
  OLLAMA_HOST            host:port to listen on (as Ollama reads it)
  OLLAMA_FAKE_LOG        file to append one JSON line per event to (start, request)
  OLLAMA_FAKE_MODELS     comma-separated models present at start (others must be pulled)
  OLLAMA_FAKE_PULL_STEPS progress lines of a pull (default 5), OLLAMA_FAKE_STEP_DELAY seconds
                         between them (default 0.2)
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "0.0.0-fake"
LOG_LOCK = threading.Lock()
MODELS = {m.strip() for m in os.environ.get("OLLAMA_FAKE_MODELS", "").split(",") if m.strip()}
MODELS_LOCK = threading.Lock()


def log(event):
    path = os.environ.get("OLLAMA_FAKE_LOG")
    if not path:
        return
    event["pid"] = os.getpid()
    with LOG_LOCK, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(event) + "\n")


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def canonical(model):
    return model if ":" in model else model + ":latest"


def present(model):
    with MODELS_LOCK:
        return canonical(model) in {canonical(m) for m in MODELS}


DETAILS = {"parent_model": "", "format": "gguf", "family": "fakearch", "families": ["fakearch"],
           "parameter_size": "1.0M", "quantization_level": "Q4_K_M"}


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-ollama"

    def log_message(self, *args):  # keep stderr quiet
        pass

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return None

    def send_json(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stream(self, content_type, pieces, delay=0.0):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        for i, piece in enumerate(pieces):
            if i and delay:
                time.sleep(delay)
            self.wfile.write(piece.encode())
            self.wfile.flush()

    def do_HEAD(self):
        self.send_response(200)
        self.end_headers()

    def do_GET(self):
        log({"event": "request", "method": "GET", "path": self.path})
        if self.path == "/":
            data = b"Ollama is running"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path == "/api/version":
            self.send_json(200, {"version": VERSION})
        elif self.path == "/api/tags":
            with MODELS_LOCK:
                names = sorted(canonical(m) for m in MODELS)
            self.send_json(200, {"models": [
                {"name": n, "model": n, "modified_at": "2025-01-02T03:04:05Z", "size": 1234567,
                 "digest": "fake" + str(abs(hash(n)) % 10**12), "details": DETAILS} for n in names]})
        else:
            self.send_json(404, {"error": f"fake ollama has no route GET {self.path}"})

    def do_POST(self):
        req = self.body()
        log({"event": "request", "method": "POST", "path": self.path, "body": req})
        if req is None:
            return self.send_json(400, {"error": "invalid JSON"})
        model = req.get("model", "")
        if self.path == "/api/pull":
            steps = int(os.environ.get("OLLAMA_FAKE_PULL_STEPS", "5"))
            delay = float(os.environ.get("OLLAMA_FAKE_STEP_DELAY", "0.2"))
            total = 1000 * steps
            lines = [json.dumps({"status": "pulling manifest"}) + "\n"]
            lines += [json.dumps({"status": "downloading sha256:fake", "digest": "sha256:fake",
                                  "total": total, "completed": 1000 * (i + 1)}) + "\n"
                      for i in range(steps)]
            lines += [json.dumps({"status": s}) + "\n"
                      for s in ("verifying sha256 digest", "writing manifest", "success")]
            self.stream("application/x-ndjson", lines, delay)
            with MODELS_LOCK:
                MODELS.add(canonical(model))
            return None
        if not present(model):
            return self.send_json(404, {"error": f"model \"{model}\" not found, try pulling it first"})
        if self.path == "/api/show":
            return self.send_json(200, {
                "modelfile": f"FROM {model}\n", "parameters": "", "template": "{{ .Prompt }}",
                "details": DETAILS, "capabilities": ["completion", "tools"],
                "model_info": {"general.architecture": "fakearch", "fakearch.context_length": 4096},
                "modified_at": "2025-01-02T03:04:05Z"})
        words = ["fake", " answer", " from", " " + model]
        if self.path in ("/api/generate", "/api/chat"):
            chat = self.path == "/api/chat"
            if (not chat and not req.get("prompt")) or (chat and not req.get("messages")):
                return self.send_json(200, {"model": model, "created_at": now(), "response": "",
                                            "done": True, "done_reason": "load"})

            def line(text, done):
                out = {"model": model, "created_at": now(), "done": done}
                if chat:
                    out["message"] = {"role": "assistant", "content": text}
                else:
                    out["response"] = text
                if done:
                    out.update(done_reason="stop", total_duration=1000, load_duration=1,
                               prompt_eval_count=3, prompt_eval_duration=10,
                               eval_count=len(words), eval_duration=100)
                return out
            if req.get("stream", True):
                lines = [json.dumps(line(w, False)) + "\n" for w in words]
                lines.append(json.dumps(line("", True)) + "\n")
                return self.stream("application/x-ndjson", lines)
            return self.send_json(200, line("".join(words), True))
        if self.path in ("/v1/chat/completions", "/v1/completions"):
            chat = self.path == "/v1/chat/completions"
            obj = "chat.completion" if chat else "text_completion"
            usage = {"prompt_tokens": 3, "completion_tokens": len(words), "total_tokens": 3 + len(words)}
            if req.get("stream"):
                def chunk(text, finish):
                    choice = {"index": 0, "finish_reason": finish}
                    if chat:
                        choice["delta"] = {"content": text} if text else {}
                    else:
                        choice["text"] = text
                    return "data: " + json.dumps({"id": "fake", "object": obj + ".chunk" if chat else obj,
                                                  "model": model, "choices": [choice]}) + "\n\n"
                events = [chunk(w, None) for w in words] + [chunk("", "stop")]
                if (req.get("stream_options") or {}).get("include_usage"):
                    events.append("data: " + json.dumps({"id": "fake", "object": obj, "model": model,
                                                         "choices": [], "usage": usage}) + "\n\n")
                events.append("data: [DONE]\n\n")
                return self.stream("text/event-stream", events)
            choice = {"index": 0, "finish_reason": "stop"}
            if chat:
                choice["message"] = {"role": "assistant", "content": "".join(words)}
            else:
                choice["text"] = "".join(words)
            return self.send_json(200, {"id": "fake", "object": obj, "model": model,
                                        "choices": [choice], "usage": usage})
        if self.path in ("/v1/embeddings", "/api/embed"):
            inputs = req.get("input", "")
            inputs = [inputs] if isinstance(inputs, str) else inputs
            vectors = [[0.5, -0.5, float(len(t))] for t in inputs]
            if self.path == "/api/embed":
                return self.send_json(200, {"model": model, "embeddings": vectors})
            return self.send_json(200, {"object": "list", "model": model, "usage": {"prompt_tokens": 1},
                                        "data": [{"object": "embedding", "index": i, "embedding": v}
                                                 for i, v in enumerate(vectors)]})
        # Ollama's HTTP router (gin) answers an unknown route in plain text: what an Ollama older
        # than 0.13.3 / 0.14 answers to /v1/responses and /v1/messages.
        data = b"404 page not found"
        self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    args = sys.argv[1:]
    if args == ["--version"] or args == ["-v"]:
        print(f"ollama version is {VERSION}")
        return 0
    if args != ["serve"]:
        print(f"fake ollama: unsupported arguments {args}", file=sys.stderr)
        return 2
    host, _, port = os.environ.get("OLLAMA_HOST", "127.0.0.1:11434").rpartition(":")
    env = {k: v for k, v in os.environ.items() if k.startswith("OLLAMA_")}
    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    log({"event": "start", "env": env})
    print(f"fake ollama listening on {host}:{port}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
