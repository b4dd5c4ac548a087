"""The official `openai` (Responses API) and `anthropic` (Messages API) clients against llm-router,
unchanged: what coding agents (Codex CLI, Claude Code) send.

Usage: python agent_protocols.py BASE_URL MODEL
The API key comes from LLM_ROUTER_API_KEY; LLM_ROUTER_LIMITED_KEY is a key limited to 1 request per
minute. Exits non-zero on the first failed check; prints a
JSON summary (the token counts each API reported) on success.
"""

import json
import os
import sys

import anthropic
import openai


def responses(base_url: str, model: str, key: str) -> dict:
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=120)
    params = dict(model=model, input="Name three colours.", instructions="Answer briefly.",
                  max_output_tokens=12, temperature=0)

    plain = client.responses.create(**params)
    assert plain.object == "response", plain.object
    assert plain.status == "completed", plain.status
    text = plain.output_text
    assert text, "the response has text"
    assert plain.usage.input_tokens > 0 and plain.usage.output_tokens > 0, plain.usage

    events = list(client.responses.create(**params, stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created", kinds[:3]
    assert kinds[-1] == "response.completed", kinds[-3:]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) >= 2, f"streamed in {len(deltas)} delta(s)"
    assert "".join(deltas) == text, f"streamed {''.join(deltas)!r} != {text!r}"
    completed = events[-1].response
    assert completed.usage.output_tokens == plain.usage.output_tokens, completed.usage

    # Items as input, as Codex sends them.
    items = client.responses.create(
        model=model, max_output_tokens=4, temperature=0,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Hello"}]}])
    assert items.status == "completed" and items.usage.output_tokens > 0, items

    try:
        client.responses.create(model="no-such-model", input="x", max_output_tokens=4)
        raise AssertionError("an unknown model was served")
    except openai.NotFoundError as e:
        assert e.status_code == 404 and e.code == "model_not_found", (e.status_code, e.code)
    try:
        client.responses.create(model=model, input=3)
        raise AssertionError("a wrong input was accepted")
    except openai.BadRequestError as e:
        assert e.status_code == 400, e.status_code
    return {"responses_input_tokens": plain.usage.input_tokens,
            "responses_output_tokens": plain.usage.output_tokens,
            "responses_stream_output_tokens": completed.usage.output_tokens,
            "responses_events": len(events)}


def messages(base_url: str, model: str, key: str) -> dict:
    # The SDK sends the key as `x-api-key`.
    client = anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0, timeout=120)
    # The SDK has no `temperature` argument any more; llama-server reads it from the body.
    params = dict(model=model, max_tokens=12, system="Answer briefly.",
                  extra_body={"temperature": 0},
                  messages=[{"role": "user", "content": "Name three colours."}])

    plain = client.messages.create(**params)
    assert plain.type == "message" and plain.role == "assistant", plain
    assert plain.content and plain.content[0].type == "text", plain.content
    text = plain.content[0].text
    assert text, "the message has text"
    assert plain.stop_reason in ("end_turn", "max_tokens"), plain.stop_reason
    assert plain.usage.input_tokens > 0 and plain.usage.output_tokens > 0, plain.usage

    events = list(client.messages.create(**params, stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop", kinds
    deltas = [e.delta.text for e in events if e.type == "content_block_delta"]
    assert len(deltas) >= 2, f"streamed in {len(deltas)} delta(s)"
    assert "".join(deltas) == text, f"streamed {''.join(deltas)!r} != {text!r}"
    stream_output = [e.usage.output_tokens for e in events if e.type == "message_delta"][-1]
    assert stream_output == plain.usage.output_tokens, (stream_output, plain.usage)

    # The SDK's stream helper, as Claude Code reads answers.
    with client.messages.stream(**params) as stream:
        helper_text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert helper_text == text and final.usage.output_tokens == plain.usage.output_tokens

    counted = client.messages.count_tokens(model=model, system="Answer briefly.",
                                           messages=params["messages"])
    assert counted.input_tokens > 0, counted

    for call in (lambda: client.messages.create(**{**params, "model": "no-such-model"}),
                 lambda: client.messages.count_tokens(model="no-such-model",
                                                      messages=params["messages"])):
        try:
            call()
            raise AssertionError("an unknown model was served")
        except anthropic.NotFoundError as e:
            assert e.status_code == 404, e.status_code
            assert e.body["error"]["type"] == "not_found_error", e.body
    try:
        client.messages.create(**{**params, "messages": []})
        raise AssertionError("an empty conversation was accepted")
    except anthropic.BadRequestError as e:
        assert e.body["error"]["type"] == "invalid_request_error", e.body
    stranger = anthropic.Anthropic(base_url=base_url, api_key="sk-llmr-not-a-key", max_retries=0)
    try:
        stranger.messages.create(**params)
        raise AssertionError("a wrong API key was accepted")
    except anthropic.AuthenticationError as e:
        assert e.status_code == 401 and e.body["error"]["type"] == "authentication_error", e.body
    return {"messages_input_tokens": plain.usage.input_tokens,
            "messages_cache_read_tokens": plain.usage.cache_read_input_tokens or 0,
            "messages_output_tokens": plain.usage.output_tokens,
            "count_tokens": counted.input_tokens,
            "messages_events": len(events)}


def over_limit(base_url: str, model: str, key: str) -> dict:
    """A key limited to 1 request per minute: its second request is refused as each SDK's own
    RateLimitError."""
    claude = anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0, timeout=60)
    gpt = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=60)
    messages = [{"role": "user", "content": "Hello"}]
    assert claude.messages.count_tokens(model=model, messages=messages).input_tokens > 0
    try:
        claude.messages.count_tokens(model=model, messages=messages)
        raise AssertionError("the second request of a 1-per-minute key was admitted")
    except anthropic.RateLimitError as e:
        assert e.status_code == 429 and e.body["error"]["type"] == "rate_limit_error", e.body
        assert "requests_per_minute" in e.body["error"]["message"], e.body
        retry_after = int(e.response.headers["retry-after"])
    try:
        gpt.responses.create(model=model, input="Hello", max_output_tokens=4)
        raise AssertionError("a request over the limit was admitted")
    except openai.RateLimitError as e:
        assert e.status_code == 429 and e.code == "requests_per_minute", (e.status_code, e.code)
    return {"limited_retry_after": retry_after}


def main() -> None:
    base_url, model = sys.argv[1], sys.argv[2]
    key = os.environ["LLM_ROUTER_API_KEY"]
    summary = {**responses(base_url, model, key), **messages(base_url, model, key),
               **over_limit(base_url, model, os.environ["LLM_ROUTER_LIMITED_KEY"])}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
