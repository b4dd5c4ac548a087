"""The official `ollama` Python client, unchanged, against llm-router's Ollama API.

Usage: python ollama_client.py BASE_URL MODEL
Exits non-zero on the first failed check; prints a JSON summary on success.
"""

import os
import base64
import json
import sys
import urllib.request

import ollama

# A 1x1 PNG, for the image check.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
PROMPT = "The capital of France is"


def http(base_url, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base_url + path, data=data,
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {os.environ['LLM_ROUTER_API_KEY']}"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, r.read().decode()


def expect_error(call, status, *words):
    try:
        result = call()
        # A streamed call fails when iterated.
        if not isinstance(result, (dict, ollama.ChatResponse, ollama.GenerateResponse)):
            list(result)
    except ollama.ResponseError as e:
        assert e.status_code == status, (e.status_code, e.error)
        for word in words:
            assert word in e.error, (word, e.error)
        return e.error
    raise AssertionError(f"no ResponseError (expected {status} {words})")


def main() -> None:
    base_url, model = sys.argv[1], sys.argv[2]
    client = ollama.Client(
        host=base_url,
        timeout=120,
        headers={"Authorization": f"Bearer {os.environ['LLM_ROUTER_API_KEY']}"},
    )
    # Without the key: the client sees the router's 401 as a ResponseError.
    expect_error(lambda: ollama.Client(host=base_url, timeout=120).list(), 401, "API key")
    # `cache_prompt` is not an Ollama option: it reaches llama-server unchanged (unknown options are
    # passed on). Without the prompt cache every request evaluates its prompt the same way, so
    # greedy answers to the same prompt are identical whichever node and slot serve them.
    options = {"temperature": 0, "seed": 42, "num_predict": 16, "cache_prompt": False}

    status, text = http(base_url, "/")
    assert status == 200 and text == "Ollama is running", (status, text)
    status, text = http(base_url, "/api/version")
    assert json.loads(text)["version"], text

    listed = client.list()
    names = [m.model for m in listed.models]
    assert model in names, names
    entry = next(m for m in listed.models if m.model == model)
    assert entry.modified_at is not None, entry
    assert entry.size and entry.size > 0, entry
    assert entry.details.format == "gguf", entry.details
    assert entry.details.family, entry.details
    assert entry.details.quantization_level, entry.details

    running = client.ps()
    loaded = next(m for m in running.models if m.model == model)
    assert loaded.expires_at is not None and loaded.size > 0, loaded

    shown = client.show(model)
    assert "completion" in shown.capabilities, shown.capabilities
    assert "embedding" in shown.capabilities, shown.capabilities
    assert shown.modelinfo.get("general.architecture") == entry.details.family, shown.modelinfo
    assert shown.details.parameter_size, shown.details

    messages = [{"role": "user", "content": "Name three colours."}]
    chat = client.chat(model=model, messages=messages, options=options)
    assert chat.message.role == "assistant", chat.message
    assert chat.message.content, "chat answer is not empty"
    assert chat.done and chat.done_reason in ("stop", "length"), (chat.done, chat.done_reason)
    assert chat.eval_count > 0 and chat.prompt_eval_count > 0, chat
    assert chat.total_duration > 0 and chat.eval_duration > 0, chat

    chunks = list(client.chat(model=model, messages=messages, options=options, stream=True))
    assert len(chunks) >= 3, f"streamed chat came in {len(chunks)} line(s)"
    assert all(not c.done for c in chunks[:-1]) and chunks[-1].done, [c.done for c in chunks]
    assert chunks[-1].done_reason in ("stop", "length"), chunks[-1]
    assert chunks[-1].eval_count == chat.eval_count, (chunks[-1].eval_count, chat.eval_count)
    streamed_chat = "".join(c.message.content or "" for c in chunks)
    assert streamed_chat == chat.message.content, (streamed_chat, chat.message.content)

    generated = client.generate(model=model, prompt=PROMPT, options=options)
    assert generated.response, "generate answer is not empty"
    assert generated.done and generated.done_reason in ("stop", "length"), generated
    assert generated.eval_count > 0 and generated.prompt_eval_count > 0, generated
    parts = list(client.generate(model=model, prompt=PROMPT, options=options, stream=True))
    assert len(parts) >= 3 and parts[-1].done, f"{len(parts)} line(s)"
    streamed = "".join(p.response for p in parts)
    assert streamed == generated.response, (streamed, generated.response)

    # The same prompt through the OpenAI API gives the same text.
    status, text = http(base_url, "/v1/completions", {
        "model": model, "prompt": PROMPT, "max_tokens": 16, "temperature": 0, "seed": 42,
        "cache_prompt": False})
    openai_text = json.loads(text)["choices"][0]["text"]
    assert openai_text == generated.response, (openai_text, generated.response)

    embedded = client.embed(model=model, input=["The sky is blue.", "Grass is green."])
    assert len(embedded.embeddings) == 2, len(embedded.embeddings)
    dims = {len(v) for v in embedded.embeddings}
    assert len(dims) == 1 and dims.pop() > 0, dims
    assert embedded.embeddings[0] != embedded.embeddings[1]
    old = client.embeddings(model=model, prompt="The sky is blue.")
    assert len(old.embedding) == len(embedded.embeddings[0]), len(old.embedding)

    unknown = expect_error(lambda: client.chat(model="no-such-model", messages=messages), 404,
                           "no-such-model", "not found")
    expect_error(lambda: client.generate(model="no-such-model", prompt="x", stream=True), 404,
                 "no-such-model")
    tools = expect_error(
        lambda: client.chat(model=model, messages=messages, tools=[{
            "type": "function",
            "function": {"name": "weather", "description": "Weather in a city",
                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                        "required": ["city"]}}}]),
        400, "tools")

    # Structured output: the answer follows the schema.
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    structured = client.chat(model=model, format=schema, options={**options, "num_predict": 48},
                             messages=[{"role": "user", "content": "Bob is 42. Reply in JSON."}])
    if structured.done_reason == "stop":
        assert isinstance(json.loads(structured.message.content)["age"], int), structured.message
    as_json = client.generate(model=model, prompt="A JSON object describing a cat:", format="json",
                              options={**options, "num_predict": 48})
    if as_json.done_reason == "stop":
        json.loads(as_json.response)

    images = expect_error(
        lambda: client.chat(model=model, messages=[
            {"role": "user", "content": "What is this?", "images": [PNG]}]),
        400, "images")

    print(json.dumps({
        "models": names,
        "chat": chat.message.content,
        "chat_lines": len(chunks),
        "generate": generated.response,
        "generate_lines": len(parts),
        "openai_completion": openai_text,
        "embedding_dims": len(embedded.embeddings[0]),
        "unknown_model_error": unknown,
        "image_error": images,
        "tools_error": tools,
        "structured": structured.message.content,
        "eval_count": generated.eval_count,
        "eval_duration_ns": generated.eval_duration,
        "total_duration_ns": generated.total_duration,
    }))


if __name__ == "__main__":
    main()
