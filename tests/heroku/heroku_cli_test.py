#!/usr/bin/env python3
"""The real Heroku CLI (npm `heroku`) against the REST gateway, unchanged.

Runs every command API.md lists under *Heroku clients* against a server that deploys
through the webhook deployer to a real receiver taking 2 s per deploy, and checks each
command's exit code and its effect over REST.

It must run inside a network namespace that has only loopback (`unshare -n`): some
commands try Heroku's own hosts, and nothing may leave the machine. The server, the
receiver and the CLI all run in that namespace.

    unshare -n python3 tests/heroku/heroku_cli_test.py --binary target/debug/pipelines \
        --heroku path/to/node_modules/.bin/heroku
"""

import argparse
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

DEPLOY_SECONDS = 2.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bring_loopback_up():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    try:
        socket.create_connection(("1.1.1.1", 443), timeout=2).close()
    except OSError:
        return
    sys.exit("this test must run with loopback only: run it under `unshare -n`")


class SlowReceiver(http.server.BaseHTTPRequestHandler):
    """A deploy webhook that takes DEPLOY_SECONDS per deploy, and records what it got."""

    deploys = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(DEPLOY_SECONDS)
        SlowReceiver.deploys.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Server:
    def __init__(self, binary, webhook_url):
        self.dir = tempfile.mkdtemp(prefix="heroku-cli-test-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, DATABASE_URL=f"sqlite://{self.dir}/heroku.db?mode=rwc", RUST_LOG="warn")
        subprocess.run([binary, "migrate"], env=env, check=True, capture_output=True)
        made = subprocess.run(
            [binary, "tokens", "create", "--name", "ops", "--role", "admin", "--email", "ops@example.com"],
            env=env, check=True, capture_output=True, text=True,
        )
        self.token = made.stdout.strip().split()[-1]
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--deployer", "webhook",
             "--webhook-url", webhook_url, "--webhook-secret", "heroku-cli-test-secret"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the server did not start")

    def call(self, method, path, body=None):
        request = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"authorization": f"Bearer {self.token}", "content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def get(self, path):
        status, body = self.call("GET", path)
        assert status == 200, f"GET {path}: {status} {body}"
        return body

    def stop(self):
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


class Cli:
    def __init__(self, heroku, server):
        self.heroku = heroku
        self.home = tempfile.mkdtemp(prefix="heroku-home-")
        self.env = dict(
            os.environ,
            HOME=self.home,
            HEROKU_HOST=server.url,
            HEROKU_API_KEY=server.token,
            DISABLE_TELEMETRY="true",
            HEROKU_SKIP_NEW_VERSION_CHECK="true",
            HEROKU_DISABLE_AUTOUPDATE="true",
            NO_COLOR="1",
            FORCE_COLOR="0",
        )
        self.ran = []

    def run(self, *args, expect=0, timeout=180):
        started = time.monotonic()
        done = subprocess.run(
            [self.heroku, *args], env=self.env, capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )
        output = done.stdout + done.stderr
        took = time.monotonic() - started
        self.ran.append((" ".join(args), done.returncode, took))
        print(f"$ heroku {' '.join(args)}  -> exit {done.returncode} in {took:.1f}s", flush=True)
        ok = done.returncode == 0 if expect == 0 else done.returncode != 0
        if not ok:
            print(output)
            raise AssertionError(f"`heroku {' '.join(args)}` exited {done.returncode}")
        return output


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def wait_for(what, predicate, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def coupling_of(server, app):
    status, body = server.call("GET", f"/apps/{app}/pipeline-couplings")
    return body if status == 200 else None


def pipeline_names(server):
    return [pipeline["name"] for pipeline in server.get("/pipelines")]


def test_commands(server, cli):
    for app in ("shop-dev", "shop-staging", "shop-prod"):
        status, body = server.call("POST", "/apps", {"name": app})
        check(status == 201, f"creating {app}: {status} {body}")

    # Destroying an unknown pipeline on a server with one pipeline deletes nothing.
    server.call("POST", "/pipelines", {"name": "only-one"})
    output = cli.run("pipelines:destroy", "no-such-pipeline", expect="failure")
    check("not found" in output.lower(), f"no 'not found' in: {output}")
    check(pipeline_names(server) == ["only-one"], "a pipeline was deleted")

    cli.run("pipelines:create", "shop", "--app", "shop-dev", "--stage", "development")
    check("shop" in pipeline_names(server), "pipelines:create made no pipeline")
    check(coupling_of(server, "shop-dev")["stage"] == "development", "shop-dev not coupled")

    cli.run("pipelines:add", "shop", "--app", "shop-staging", "--stage", "staging")
    cli.run("pipelines:add", "shop", "--app", "shop-prod", "--stage", "staging")
    check(coupling_of(server, "shop-prod")["stage"] == "staging", "shop-prod not coupled")

    cli.run("pipelines:update", "--app", "shop-prod", "--stage", "production")
    check(coupling_of(server, "shop-prod")["stage"] == "production", "pipelines:update moved nothing")

    output = cli.run("pipelines")
    check("shop" in output and "only-one" in output, f"pipelines lists: {output}")

    output = cli.run("pipelines:info", "shop")
    for app in ("shop-dev", "shop-staging", "shop-prod"):
        check(app in output, f"pipelines:info does not show {app}: {output}")

    cli.run("pipelines:rename", "shop", "storefront")
    check("storefront" in pipeline_names(server) and "shop" not in pipeline_names(server),
          "pipelines:rename renamed nothing")
    cli.run("pipelines:rename", "storefront", "shop")

    # A release made elsewhere; config:set reports the newest release's version.
    status, body = server.call("POST", "/apps/shop-dev/releases", {"image": "registry/shop:1"})
    check(status == 201, f"release: {status} {body}")
    # Config: the drift check compares keys, so each stage gets the same keys.
    output = cli.run("config:set", "GREETING=hello", "COLOUR=blue", "--app", "shop-dev")
    check(server.get("/apps/shop-dev/config-vars") == {"COLOUR": "blue", "GREETING": "hello"},
          "config:set set nothing")
    for app in ("shop-staging", "shop-prod"):
        server.call("POST", f"/apps/{app}/releases", {"image": "registry/shop:0"})
        cli.run("config:set", "GREETING=hi", "COLOUR=red", "--app", app)
    output = cli.run("config", "--app", "shop-dev")
    check("GREETING" in output and "hello" in output, f"config shows: {output}")
    output = cli.run("config:get", "GREETING", "--app", "shop-dev")
    check(output.strip().splitlines()[-1] == "hello", f"config:get printed: {output}")
    cli.run("config:unset", "COLOUR", "--app", "shop-dev")
    check(server.get("/apps/shop-dev/config-vars") == {"GREETING": "hello"}, "config:unset removed nothing")
    cli.run("config:set", "COLOUR=green", "--app", "shop-dev")

    # A second release, made with the config above, then both read by the CLI.
    status, body = server.call("POST", "/apps/shop-dev/releases", {"image": "registry/shop:2"})
    check(status == 201, f"release: {status} {body}")
    output = cli.run("releases", "--app", "shop-dev")
    check("v2" in output and "v1" in output, f"releases shows: {output}")
    check("ops@example.com" in output, f"releases names no author: {output}")
    output = cli.run("releases", "--app", "shop-dev", "-n", "1")
    check("v2" in output and "v1" not in output, f"releases -n 1 shows: {output}")
    output = cli.run("releases:info", "--app", "shop-dev")
    check("v2" in output, f"releases:info shows: {output}")
    check("GREETING" in output, f"releases:info shows no config vars: {output}")
    output = cli.run("releases:info", "v1", "--app", "shop-dev")
    check("v1" in output, f"releases:info v1 shows: {output}")

    # A promotion through a deployer that takes 2 s per deploy.
    deploys_before = len(SlowReceiver.deploys)
    output = cli.run("pipelines:promote", "--app", "shop-dev")
    check("succeeded" in output, f"pipelines:promote reports: {output}")
    check(len(SlowReceiver.deploys) == deploys_before + 1, "the receiver got no deploy")
    staging = server.get("/apps/shop-staging/releases")
    check(staging[-1]["image"] == "registry/shop:2" and staging[-1]["status"] == "succeeded",
          f"shop-staging runs: {staging[-1]}")
    # --to may name only apps at the next stage.
    promotions_before = len(server.get("/pipeline-promotions"))
    output = cli.run("pipelines:promote", "--app", "shop-dev", "--to", "shop-prod", expect="failure")
    check("next stage" in output or "staging" in output, f"the refusal says: {output}")
    check(len(server.get("/pipeline-promotions")) == promotions_before, "a refused promotion was made")
    output = cli.run("pipelines:promote", "--app", "shop-staging", "--to", "shop-prod")
    check("succeeded" in output, f"pipelines:promote --to reports: {output}")
    check(server.get("/apps/shop-prod/releases")[-1]["image"] == "registry/shop:2", "shop-prod not promoted")

    # Rollbacks: a new release with the earlier image, deployed through the webhook.
    cli.run("releases:rollback", "v1", "--app", "shop-dev")
    rolled = wait_for("the rollback to deploy", lambda: (
        lambda newest: newest if newest["status"] == "succeeded" else None
    )(server.get("/apps/shop-dev/releases")[-1]))
    check(rolled["image"] == "registry/shop:1" and rolled["description"] == "Rollback to v1",
          f"releases:rollback made: {rolled}")
    cli.run("rollback", "--app", "shop-dev")
    rolled_again = wait_for("the second rollback to deploy", lambda: (
        lambda newest: newest if newest["status"] == "succeeded" and newest["version"] > rolled["version"] else None
    )(server.get("/apps/shop-dev/releases")[-1]))
    check(rolled_again["image"] == "registry/shop:2", f"rollback made: {rolled_again}")

    cli.run("pipelines:remove", "--app", "shop-prod")
    check(coupling_of(server, "shop-prod") is None, "pipelines:remove removed nothing")

    cli.run("pipelines:destroy", "shop")
    cli.run("pipelines:destroy", "only-one")
    check(pipeline_names(server) == [], "pipelines:destroy left pipelines")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--heroku", required=True)
    args = parser.parse_args()
    bring_loopback_up()
    receiver_port = free_port()
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", receiver_port), SlowReceiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    server = Server(os.path.abspath(args.binary), f"http://127.0.0.1:{receiver_port}/deploy")
    cli = Cli(os.path.abspath(args.heroku), server)
    try:
        test_commands(server, cli)
    except Exception:
        print(f"server log: {server.log.name}")
        raise
    finally:
        server.stop()
        receiver.shutdown()
    commands = sorted({ran.split()[0] for ran, _, _ in cli.ran})
    print(f"the Heroku CLI passed: {len(cli.ran)} runs of {len(commands)} commands: {', '.join(commands)}")


if __name__ == "__main__":
    main()
