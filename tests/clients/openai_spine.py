"""The official `openai` client against llm-router: chat (plain and streamed) and a completion.

Usage: python openai_spine.py BASE_URL MODEL
Exits non-zero on the first failed check; prints a JSON summary on success.
"""

import json
import os
import sys

import openai
from openai import OpenAI


def main() -> None:
    base_url, model = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=f"{base_url}/v1", api_key=os.environ["LLM_ROUTER_API_KEY"],
                    max_retries=0, timeout=120)
    # A wrong key is refused the way the client expects: AuthenticationError (401).
    stranger = OpenAI(base_url=f"{base_url}/v1", api_key="sk-llmr-not-a-key", max_retries=0)
    try:
        stranger.models.list()
        raise AssertionError("a wrong API key was accepted")
    except openai.AuthenticationError as e:
        assert e.status_code == 401 and e.code == "invalid_api_key", (e.status_code, e.code)
    messages = [{"role": "user", "content": "Name three colours."}]
    params = dict(model=model, messages=messages, max_tokens=24, temperature=0, seed=42)

    chat = client.chat.completions.create(**params)
    assert chat.id, "chat completion has an id"
    assert chat.object == "chat.completion", chat.object
    assert chat.model, "chat completion names its model"
    assert len(chat.choices) == 1, chat.choices
    choice = chat.choices[0]
    assert choice.message.role == "assistant", choice.message.role
    assert choice.finish_reason in ("stop", "length"), choice.finish_reason
    assert chat.usage.prompt_tokens > 0 and chat.usage.completion_tokens > 0, chat.usage
    assert chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens
    text = choice.message.content or ""
    assert text, "chat answer is not empty"

    chunks = list(client.chat.completions.create(
        **params, stream=True, stream_options={"include_usage": True}))
    assert len(chunks) >= 2, f"streamed answer came in {len(chunks)} chunk(s)"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1, "all chunks share one id"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text, f"streamed {streamed!r} != non-streamed {text!r}"
    usage = [c.usage for c in chunks if c.usage]
    assert usage and usage[-1].completion_tokens == chat.usage.completion_tokens, usage

    completion = client.completions.create(
        model=model, prompt="The capital of France is", max_tokens=16, temperature=0)
    assert completion.id and completion.object == "text_completion", completion
    assert completion.choices[0].text, "completion text is not empty"
    assert completion.usage.completion_tokens > 0

    stream = client.completions.create(
        model=model, prompt="The capital of France is", max_tokens=16, temperature=0, stream=True)
    streamed_completion = "".join(c.choices[0].text for c in stream if c.choices)
    assert streamed_completion == completion.choices[0].text, (
        f"{streamed_completion!r} != {completion.choices[0].text!r}")

    print(json.dumps({
        "chat": text,
        "chat_chunks": len(chunks),
        "completion": completion.choices[0].text,
    }))


if __name__ == "__main__":
    main()
