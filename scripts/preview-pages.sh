#!/usr/bin/env bash
# Render the end-user templates with sample data and screenshot them.
# Usage: scripts/preview-pages.sh [OUT_DIR]   (default /tmp/gatehouse-pages)
set -euo pipefail

out="${1:-/tmp/gatehouse-pages}"
templates="$(cd "$(dirname "$0")/../Sources/AuthServer/Browser/Pages/Templates" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

python3 -c 'import chevron' 2>/dev/null || pip install --quiet chevron
command -v chromium >/dev/null || apt-get install -y chromium

python3 - "$templates" "$work" <<'EOF'
import sys, chevron
src, dst = sys.argv[1:]
common = {"client_name": "Acme Expense Reports", "csrf": "c5rf-t0ken", "action": "/authorize",
          "authz": "cmVzcG9uc2VfdHlwZT1jb2RlJmNsaWVudF9pZD1kZW1v.c2lnbmF0dXJl", "username": "alice@example.com"}
pages = {
    "login": dict(common, error="Incorrect username or password.", issuer_host="127.0.0.1:8443"),
    "consent": dict(common, redirect_host="client.example.com",
                    scopes=["openid", "profile", "email", "offline_access", "read:expenses"]),
    "error": {"title": "Invalid request",
              "message": "The redirect URI does not match any URI registered for this application."},
}
for name, ctx in pages.items():
    with open(f"{src}/{name}.mustache") as f:
        html = chevron.render(f.read(), ctx)
    with open(f"{dst}/{name}.html", "w") as f:
        f.write(html)
EOF

for page in login consent error; do
  for mode in desktop:1280,900 phone:390,844 phone-dark:390,844; do
    label="${mode%%:*}" size="${mode#*:}" extra=()
    [[ $label == *dark ]] && extra=(--force-dark-mode --blink-settings=preferredColorScheme=0)
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
      --user-data-dir="$work/profile" "${extra[@]}" \
      --window-size="$size" --screenshot="$out/$page-$label.png" \
      "file://$work/$page.html" 2>/dev/null
  done
done
ls -1 "$out"/*.png
