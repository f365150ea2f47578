"""An ordinary Python script using requests or httpx (argv[1]) with no proxy or CA code: both libraries
read HTTPS_PROXY and the CA bundle (REQUESTS_CA_BUNDLE / SSL_CERT_FILE) from the environment, which
sluicectl run sets."""
import json
import os
import sys

URL = "https://api.anthropic.com/v1/messages"
HEADERS = {
    "x-api-key": os.environ.get("ANTHROPIC_API_KEY", ""),
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
}
BODY = {"model": "claude-test", "max_tokens": 64, "messages": [{"role": "user", "content": "say hi"}]}

lib = sys.argv[1] if len(sys.argv) > 1 else "requests"
if lib == "requests":
    import requests

    r = requests.post(URL, headers=HEADERS, data=json.dumps(BODY), timeout=15)
    status, data = r.status_code, r.json()
elif lib == "httpx":
    import httpx

    r = httpx.post(URL, headers=HEADERS, content=json.dumps(BODY), timeout=15)
    status, data = r.status_code, r.json()
else:
    sys.exit(f"unknown library {lib}")
text = data.get("content", [{}])[0].get("text") if isinstance(data, dict) else None
print(f"{lib} status {status}: {text if text else json.dumps(data)}")
sys.exit(0 if status == 200 else 1)
