"""`--model api`: a VLM behind any OpenAI-compatible chat-completions server (vLLM, SGLang, TGI,
`transformers serve`, hosted APIs), through the `openai` client.

    igbench predict --model api --endpoint http://HOST:PORT/v1 --checkpoint MODEL_NAME \\
        --data data/clevr --split ood --out preds.jsonl [--api-key-env VAR] [predict.concurrency=8 ...]

Images travel as PNG data URLs (the dataset's own bytes). The key comes from OPENAI_API_KEY, or the
variable named by --api-key-env, and is written to no output. Requests run `predict.concurrency` at a
time with `predict.timeout` seconds each; 429s, 5xx, timeouts, dropped connections and malformed bodies
are retried with exponential backoff (`predict.backoff`, doubling, at most 30 s, `predict.max_retries`
times). Successful responses are cached on disk, keyed by (model, endpoint, sha256 of the conversation
with its images' hashes, generation parameters), so a repeated or interrupted run asks nothing twice.
Anything else the server answers (401, 403, 404, 400) stops the run with one line; lines already written stay.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from igbench.errors import UserError
from igbench.files import cache_folder, write_json_atomic
from igbench.models.vlm_run import Answer, VLMConfig, generation_params, load_config, run_predictions

NAME = "api"
CONFIG_CLASS = VLMConfig
DEFAULT_CONFIG = "vlm"
KEY_VARIABLE = "OPENAI_API_KEY"
MAX_BACKOFF = 30.0
CACHE_NAME = "vlm-responses"  # igbench.files.cache_folder, next to the re-render cache


class MalformedResponse(Exception):
    """A 2xx answer without a chat completion in it."""


def api_key(variable: str | None) -> str:
    """The key from `variable` (which must be set) or OPENAI_API_KEY; local servers need none."""
    if variable:
        if not os.environ.get(variable):
            raise UserError(f"--api-key-env {variable}: that environment variable is not set")
        return os.environ[variable]
    return os.environ.get(KEY_VARIABLE) or "EMPTY"


def check_image(png: bytes, sample_id: str) -> None:
    """A server answers an unreadable image with a 5xx that retries cannot cure: refuse it here."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(png)) as img:
            img.verify()
    except Exception:  # noqa: BLE001 - PIL raises many types for broken files
        raise UserError(f"the image of {sample_id} is not a readable image file; nothing was sent for it") from None


def wire_messages(conversation: list[dict]) -> list[dict]:
    """Chat-completions messages: images as PNG data URLs; assistant turns as plain strings."""
    messages = []
    for message in conversation:
        if message["role"] == "assistant":
            messages.append({"role": "assistant", "content": "".join(p["text"] for p in message["content"])})
            continue
        content = []
        for part in message["content"]:
            if part["type"] == "image":
                url = "data:image/png;base64," + base64.b64encode(part["png"]).decode()
                content.append({"type": "image_url", "image_url": {"url": url}})
            else:
                content.append({"type": "text", "text": part["text"]})
        messages.append({"role": message["role"], "content": content})
    return messages


class APIClient:
    def __init__(self, endpoint: str, model: str, key: str, config: VLMConfig):
        import openai

        self.endpoint, self.model, self.config = endpoint.rstrip("/"), model, config
        self.identity = {"model_kind": NAME, "model": model, "endpoint": self.endpoint}
        self.client = openai.OpenAI(base_url=self.endpoint, api_key=key, max_retries=0, timeout=config.predict.timeout)
        p = config.predict
        self.cache_dir = (Path(p.cache_dir) if p.cache_dir else cache_folder(CACHE_NAME)) if p.cache else None

    def answer(self, conversations: list[list[dict]], ids: list[str]) -> list[Answer]:
        with ThreadPoolExecutor(self.config.predict.concurrency) as pool:
            return list(pool.map(self.ask, conversations, ids))

    def cache_key(self, conversation: list[dict]) -> str:
        from igbench.models.vlm_prompt import conversation_sha256

        identity = {"model": self.model, "endpoint": self.endpoint, "conversation": conversation_sha256(conversation),
                    "generation": generation_params(self.config.predict)}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()

    def ask(self, conversation: list[dict], sample_id: str) -> Answer:
        path = self.cache_dir / f"{self.cache_key(conversation)}.json" if self.cache_dir else None
        if path is not None and path.exists():
            saved = json.loads(path.read_text())
            return Answer(saved["text"], saved["tokens_in"], saved["tokens_out"], saved["seconds"], cached=True)
        for message in conversation:
            for part in message["content"]:
                if part["type"] == "image":
                    check_image(part["png"], sample_id)
        answer = self.request(wire_messages(conversation), sample_id)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path, {"text": answer.text, "tokens_in": answer.tokens_in,
                                     "tokens_out": answer.tokens_out, "seconds": answer.seconds})
        return answer

    def request(self, messages: list[dict], sample_id: str) -> Answer:
        import openai

        p = self.config.predict
        params = {"max_tokens": p.max_new_tokens}
        if p.do_sample:
            params.update(temperature=p.temperature, top_p=p.top_p, seed=p.seed)
        else:
            params["temperature"] = 0.0
        last = ""
        for attempt in range(p.max_retries + 1):
            if attempt:
                time.sleep(min(p.backoff * 2 ** (attempt - 1), MAX_BACKOFF))
            tick = time.perf_counter()
            try:
                response = self.client.chat.completions.create(model=self.model, messages=messages, **params)
                text = completion_text(response)
            except openai.AuthenticationError as err:
                raise UserError(f"{self.endpoint} rejected the API key (401): {server_message(err)}") from None
            except openai.PermissionDeniedError as err:
                raise UserError(f"{self.endpoint} refused access (403): {server_message(err)}") from None
            except openai.NotFoundError as err:
                raise UserError(f"{self.endpoint} does not know model '{self.model}' (404): {server_message(err)}") from None
            except (openai.APITimeoutError, openai.APIConnectionError) as err:
                last = f"{type(err).__name__}: {err}"
                continue
            except openai.APIStatusError as err:
                if err.status_code == 429 or err.status_code >= 500:
                    last = f"HTTP {err.status_code}"
                    continue
                raise UserError(f"{self.endpoint} refused the request for {sample_id} (HTTP {err.status_code}, "
                                f"model '{self.model}'): {server_message(err)}") from None
            except (MalformedResponse, openai.APIResponseValidationError, json.JSONDecodeError) as err:
                last = f"malformed response: {str(err)[:120]}"
                continue
            usage = getattr(response, "usage", None)
            return Answer(text, int(getattr(usage, "prompt_tokens", 0) or 0),
                          int(getattr(usage, "completion_tokens", 0) or 0), time.perf_counter() - tick, cached=False)
        raise UserError(f"{self.endpoint} does not answer for {sample_id} after {p.max_retries + 1} tries "
                        f"(last: {last})")

    def close(self) -> None:
        self.client.close()


def completion_text(response) -> str:
    choices = getattr(response, "choices", None)
    if not choices:
        raise MalformedResponse(f"no choices in {str(response)[:80]!r}")
    text = getattr(getattr(choices[0], "message", None), "content", None)
    if not isinstance(text, str):
        raise MalformedResponse("the first choice holds no message text")
    return text


def server_message(err) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("message") or (body.get("error") or {})
        if isinstance(detail, dict):
            detail = detail.get("message")
        if detail:
            return " ".join(str(detail).split())[:200]
    return " ".join(str(err).split())[:200]


def predict(checkpoint, data, split, out, batch_size=None, limit=None, overrides=(), progress=True,
            endpoint: str | None = None, api_key_env: str | None = None) -> dict:
    if not endpoint:
        raise UserError("--model api needs --endpoint http://HOST:PORT/v1")
    if not str(endpoint).startswith(("http://", "https://")):
        raise UserError(f"--endpoint must be an http(s) URL, got '{endpoint}'")
    config = load_config(overrides)
    if batch_size:
        config.predict.batch_size = batch_size
    client = APIClient(str(endpoint), str(checkpoint), api_key(api_key_env), config)
    try:
        return run_predictions(client, config, data, split, out, limit, progress)
    finally:
        client.close()


def train(config: VLMConfig, data, output, resume: bool = False, progress: bool = True) -> dict:
    """A model behind a server has no run folder: its name, endpoint and key are given to `igbench predict`."""
    raise UserError("--model api learns nothing and keeps no run folder: "
                    "igbench predict --model api --endpoint URL --checkpoint MODEL_NAME ...")
