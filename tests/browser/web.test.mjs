// The built-in web client in a real browser (Debian's Chromium, driven by
// playwright-core) against the real rookery binary: two browser users and
// one plain IRC user over a socket share a room.
//
//   ROOKERY_BIN=target/release/rookery node tests/browser/web.test.mjs
//
// Every wait is for something to appear (a selector, a text, an IRC line),
// never a fixed sleep. Screenshots go to target/browser-screenshots/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
// Absolute: the server runs in its own temporary directory.
const BIN = path.resolve(process.env.ROOKERY_BIN ?? path.join(root, "target/release/rookery"));
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = path.join(root, "target/browser-screenshots");
/** How long any one expected thing may take to appear. */
const WAIT = 20000;

// ---------------------------------------------------------------------------
// The server

/** A port nothing listens on now, for a server restarted on the same ports. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** rookery in a temporary directory, with history, without flood control. */
class Server {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "rookery-browser-"));
    this.log = [];
    this.child = null;
  }

  async configure() {
    this.ircPort = await freePort();
    this.httpPort = await freePort();
    // Standing rooms keep their history across the restart below.
    fs.writeFileSync(path.join(this.dir, "rookery.toml"), `
[server]
name = "rookery.test"
bans_file = ""
[[listen]]
address = "127.0.0.1:${this.ircPort}"
[[http]]
address = "127.0.0.1:${this.httpPort}"
[flood]
enabled = false
[history]
path = "history.db"
[cloaking]
secret_file = "cloak.key"
[[room]]
name = "#lobby"
topic = "Everyone's room"
[[room]]
name = "#scroll"
`);
    this.url = `http://127.0.0.1:${this.httpPort}/`;
  }

  /** Starts the binary and resolves once it listens on both ports. */
  start() {
    const child = spawn(BIN, ["--config", "rookery.toml"], {
      cwd: this.dir,
      env: { ...process.env, RUST_LOG: "info", NO_COLOR: "1" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.child = child;
    const wanted = [`127.0.0.1:${this.ircPort}`, `127.0.0.1:${this.httpPort}`];
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not listen:\n${this.tail()}`)), WAIT);
      const listening = new Set();
      let pending = "";
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (chunk) => {
        pending += chunk;
        const lines = pending.split("\n");
        pending = lines.pop();
        for (const line of lines) {
          this.log.push(line);
          if (this.log.length > 5000) this.log.shift();
          // "listening on 127.0.0.1:PORT" for IRC, "serving HTTP and
          // WebSocket on 127.0.0.1:PORT" for HTTP.
          if (/listening on|serving .* on/i.test(line)) {
            listening.add(wanted.find((addr) => line.includes(addr)));
            if (wanted.every((addr) => listening.has(addr))) {
              clearTimeout(timer);
              resolve();
            }
          }
        }
      });
      child.on("error", (error) => {
        clearTimeout(timer);
        reject(new Error(`cannot run ${BIN}: ${error.message}`));
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited (${code}):\n${this.tail()}`));
      });
    });
  }

  /** Kills the server at once, as a crash would, and waits for it to go. */
  async kill() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.removeAllListeners("exit");
    const gone = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await gone;
  }

  tail() {
    return this.log.slice(-20).join("\n");
  }

  async remove() {
    await this.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// A plain IRC user over a socket

class RawClient {
  static async connect(port, nick, caps = []) {
    const client = new RawClient();
    await client.open(port);
    if (caps.length > 0) {
      client.send(`CAP REQ :${caps.join(" ")}`);
      client.send("CAP END");
    }
    client.send(`NICK ${nick}`);
    client.send(`USER ${nick} 0 * :${nick}`);
    await client.waitFor((line) => / 001 /.test(line));
    return client;
  }

  open(port) {
    this.lines = [];
    this.waiters = [];
    this.buffer = "";
    return new Promise((resolve, reject) => {
      this.socket = net.connect(port, "127.0.0.1", resolve);
      this.socket.on("error", reject);
      this.socket.setEncoding("utf8");
      this.socket.on("data", (chunk) => this.onData(chunk));
    });
  }

  onData(chunk) {
    this.buffer += chunk;
    let end;
    while ((end = this.buffer.indexOf("\r\n")) >= 0) {
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      if (line.startsWith("PING ")) this.send(`PONG ${line.slice(5)}`);
      this.lines.push(line);
      this.waiters = this.waiters.filter((waiter) => !waiter(line));
    }
  }

  send(line) {
    this.socket.write(`${line}\r\n`);
  }

  /** The first line, from now on or already read since the last call, that matches. */
  waitFor(match, what = String(match)) {
    const test = typeof match === "function" ? match : (line) => match.test(line);
    const seen = this.lines.findIndex(test);
    if (seen >= 0) {
      const line = this.lines[seen];
      this.lines.splice(0, seen + 1);
      return Promise.resolve(line);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no IRC line like ${what}`)), WAIT);
      this.waiters.push((line) => {
        if (!test(line)) return false;
        clearTimeout(timer);
        this.lines = [];
        resolve(line);
        return true;
      });
    });
  }

  close() {
    this.socket?.destroy();
  }
}

// ---------------------------------------------------------------------------
// Browser users

let server;
let browser;
const pages = [];
/** alert(), confirm() and prompt() calls: a message that runs script would show here. */
const dialogs = [];
/** Errors on the pages, including Content-Security-Policy refusals. */
const pageErrors = [];

async function openUser(viewport) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    dialog.dismiss().catch(() => {});
  });
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error" && /Content Security Policy|Refused to/.test(message.text())) {
      pageErrors.push(message.text());
    }
  });
  pages.push(page);
  return page;
}

/** Fills the connect screen and waits for the room to be open. */
async function signIn(page, nick, room) {
  await page.goto(server.url);
  await page.fill("#connect-nick", nick);
  await page.fill("#connect-room", room);
  await page.click("#connect-button");
  await page.locator(`.log[data-buffer="${room}"]`).waitFor({ state: "visible" });
}

/** The visible log of a page, where its messages are. */
const activeLog = (page) => page.locator(".log:visible");

/** Waits for a message line with exactly this text in the page's open buffer. */
async function expectLine(page, text) {
  await activeLog(page).locator(".line .text", { hasText: text }).first().waitFor();
}

async function typeLine(page, text) {
  await page.fill("#input", text);
  await page.press("#input", "Enter");
}

/** A phone-sized page has its side lists in drawers. */
async function openRoomsDrawer(page) {
  if (!(await page.locator("#rooms").evaluate((el) => el.classList.contains("open")))) {
    await page.click("#toggle-rooms");
  }
}

/** Taps beside the open drawer, on the dimmed page, as a phone user would. */
async function closeDrawer(page) {
  const roomsOpen = await page.locator("#rooms.open").count();
  const width = page.viewportSize().width;
  await page.click("#backdrop", { position: { x: roomsOpen ? width - 10 : 10, y: 420 } });
  await page.locator(".drawer.open").waitFor({ state: "detached" });
}

async function screenshot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  // Drawers slide in: wait for the slide to finish, not for a fixed time.
  await page.evaluate(() => Promise.all(document.getAnimations().map((a) => a.finished)));
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

let alice; // desktop
let bob; // phone
let carol; // raw IRC
let frank; // phone, logged in to an account

before(async () => {
  assert.ok(fs.existsSync(BIN), `no rookery binary at ${BIN} (set ROOKERY_BIN)`);
  assert.ok(fs.existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}`);
  server = new Server();
  await server.configure();
  await server.start();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  alice = await openUser({ width: 1280, height: 800 });
  bob = await openUser({ width: 390, height: 844 });
});

after(async () => {
  carol?.close();
  await browser?.close();
  if (server) {
    if (process.exitCode) console.error(`server log:\n${server.tail()}`);
    await server.remove();
  }
});

test("the connect screen: no nick remembered yet, and it looks right on a phone", async () => {
  await bob.goto(server.url);
  await bob.locator("#connect-form").waitFor();
  assert.equal(await bob.inputValue("#connect-nick"), "");
  await screenshot(bob, "phone-connect");
});

test("two browser users and a raw IRC user talk in one room", async () => {
  await signIn(alice, "alice", "#lobby");
  await signIn(bob, "bob", "#lobby");
  carol = await RawClient.connect(server.ircPort, "carol");
  carol.send("JOIN #lobby");
  await carol.waitFor(/ 366 carol #lobby /);
  // The member list follows joins.
  await alice.locator("#member-list .member", { hasText: "carol" }).waitFor();
  await alice.locator("#member-list .member", { hasText: "bob" }).waitFor();
  // The topic of the standing room shows above the messages.
  await alice.locator("#buffer-topic", { hasText: "Everyone's room" }).waitFor();

  await typeLine(alice, "hello from alice");
  await expectLine(bob, "hello from alice");
  await carol.waitFor(/^(@\S+ )?:alice!\S+ PRIVMSG #lobby :hello from alice$/);
  // Her own line comes back through echo-message, once: counted after a
  // later line arrived, so a second copy would have been shown by then.
  await expectLine(alice, "hello from alice");

  await typeLine(bob, "hi from bob");
  await expectLine(alice, "hi from bob");
  await carol.waitFor(/ PRIVMSG #lobby :hi from bob$/);
  assert.equal(await activeLog(alice).locator(".line .text", { hasText: /^hello from alice$/ }).count(), 1);

  carol.send("PRIVMSG #lobby :hello from carol");
  await expectLine(alice, "hello from carol");
  await expectLine(bob, "hello from carol");

  carol.send("PRIVMSG #lobby :\x01ACTION waves\x01");
  await expectLine(alice, "* carol waves");
});

test("a private message opens a buffer with an unread count", async () => {
  carol.send("PRIVMSG alice :psst, alice");
  const entry = alice.locator('.buffer[data-name="carol"]');
  await entry.locator(".unread", { hasText: /^1$/ }).waitFor();
  await entry.click();
  await expectLine(alice, "psst, alice");
  // Reading it clears the count.
  assert.equal(await entry.locator(".unread").count(), 0);
  await typeLine(alice, "what is it?");
  await carol.waitFor(/:alice!\S+ PRIVMSG carol :what is it\?$/);
  // A line naming her in a room she is not looking at counts as a mention.
  carol.send("PRIVMSG #lobby :alice, look here");
  const lobby = alice.locator('.buffer[data-name="#lobby"]');
  await lobby.locator(".unread.mention", { hasText: /^1$/ }).waitFor();
  await lobby.click();
  await activeLog(alice).locator(".line.mention .text", { hasText: "alice, look here" }).waitFor();
});

test("joining from the room list; ops and voice in the member list", async () => {
  carol.send("JOIN #adhoc");
  await carol.waitFor(/ 366 carol #adhoc /);
  carol.send("TOPIC #adhoc :made by carol");
  await carol.waitFor(/ TOPIC #adhoc /);
  // On a phone the room list is a drawer; opening it lists the rooms anew.
  await openRoomsDrawer(bob);
  const entry = bob.locator('#room-list .room[data-name="#adhoc"]');
  await entry.locator(".topic", { hasText: "made by carol" }).waitFor();
  await entry.click();
  await bob.locator('.log[data-buffer="#adhoc"]').waitFor({ state: "visible" });
  await bob.locator("#buffer-topic", { hasText: "made by carol" }).waitFor();
  await bob.locator("#rooms.open").waitFor({ state: "detached" });
  await bob.click("#toggle-members");
  await bob.locator("#member-list .member", { hasText: "@carol" }).waitFor();
  carol.send("MODE #adhoc +v bob");
  await bob.locator("#member-list .member", { hasText: "+bob" }).waitFor();
  await expectLine(bob, "carol sets mode +v bob");
  await closeDrawer(bob);
  await typeLine(bob, "/part");
  await carol.waitFor(/:bob!\S+ PART #adhoc/);
  await bob.locator('.log[data-buffer="#adhoc"]').waitFor({ state: "detached" });
  await openRoomsDrawer(bob);
  await bob.locator('#buffer-list .buffer[data-name="#lobby"]').click();
  await bob.locator('.log[data-buffer="#lobby"]').waitFor({ state: "visible" });
});

test("text from the network is never markup; links are links", async () => {
  const attack = "<img src=x onerror=alert(1)>";
  // A room whose very name is markup, if the server allows such a name.
  const evilRoom = "#<img/src=x/onerror=alert(1)>";
  carol.send(`JOIN ${evilRoom}`);
  const joined = await carol.waitFor(/ (366|403|479) carol /);
  const evilAllowed = / 366 /.test(joined);
  carol.send(`PRIVMSG #lobby :${attack}`);
  carol.send(`NOTICE #lobby :notice ${attack}`);
  // #lobby's topic is the operators' (+t): a room of carol's carries one.
  carol.send("JOIN #xss");
  await carol.waitFor(/ 366 carol #xss /);
  carol.send(`TOPIC #xss :topic ${attack}`);
  await carol.waitFor(/ TOPIC #xss /);
  carol.send(`PART #lobby :part ${attack}`);
  carol.send("JOIN #lobby");
  await carol.waitFor(/ 366 carol #lobby /);
  carol.send("PRIVMSG #lobby :javascript:alert(1) is no link");
  carol.send("PRIVMSG #lobby :see https://example.org/a?b=1&c=2, it is good");
  for (const page of [alice, bob]) {
    await expectLine(page, "it is good");
    const texts = await activeLog(page).locator(".line .text").allTextContents();
    for (const wanted of [attack, `notice ${attack}`]) {
      assert.ok(texts.includes(wanted), `the literal text ${wanted} is shown`);
    }
    assert.ok(texts.some((t) => t.includes(`(part ${attack})`)), "the part reason is text");
    const link = activeLog(page).locator('a[href="https://example.org/a?b=1&c=2"]');
    assert.equal(await link.count(), 1);
    assert.equal(await link.getAttribute("rel"), "noopener noreferrer");
    assert.equal(await link.getAttribute("target"), "_blank");
    assert.equal(await page.locator('a[href^="javascript:" i]').count(), 0, "no javascript: link");
  }
  // The room list shows the topic (and the odd room's name) as text.
  await alice.click("#list-refresh");
  await alice.locator("#room-list .room .topic", { hasText: `topic ${attack}` }).waitFor();
  if (evilAllowed) await alice.locator("#room-list .room .name", { hasText: evilRoom }).waitFor();
  for (const page of [alice, bob]) {
    assert.equal(await page.locator("img").count(), 0, "no img element anywhere on the page");
  }
  assert.deepEqual(dialogs, [], "no dialog opened");
});

test("screenshots at phone and desktop size", async () => {
  carol.send("PRIVMSG #lobby :a longer line, to see how text wraps on a narrow screen when it goes on for a while");
  carol.send("PRIVMSG bob :hi bob, a word in private");
  await expectLine(bob, "goes on for a while");
  await bob.locator('#unread-total:not([hidden])').waitFor();
  await screenshot(alice, "desktop-chat");
  await screenshot(bob, "phone-chat");
  await openRoomsDrawer(bob);
  await bob.locator("#room-list .room", { hasText: "#lobby" }).waitFor();
  await screenshot(bob, "phone-rooms");
  await closeDrawer(bob);
  await bob.click("#toggle-members");
  await bob.locator("#members.open #member-list .member", { hasText: "carol" }).waitFor();
  await screenshot(bob, "phone-members");
  await closeDrawer(bob);
  await bob.emulateMedia({ colorScheme: "dark" });
  await alice.emulateMedia({ colorScheme: "dark" });
  await screenshot(bob, "phone-chat-dark");
  await screenshot(alice, "desktop-chat-dark");
  await bob.emulateMedia({ colorScheme: "light" });
  await alice.emulateMedia({ colorScheme: "light" });
});

test("closed drawers are out of reach; Escape closes one; Send keeps the keyboard", async () => {
  // bob has an unread private line: the drawer button says so to screen readers too.
  await bob.locator("#unread-total:not([hidden])").waitFor();
  assert.match(await bob.getAttribute("#toggle-rooms", "aria-label"), /^Rooms, \d+ unread$/);
  assert.equal(await bob.locator("#rooms").evaluate((el) => el.inert), true, "a closed drawer is inert");
  assert.equal(await bob.getAttribute("#toggle-rooms", "aria-expanded"), "false");
  await bob.click("#toggle-rooms");
  await bob.locator("#rooms.open").waitFor();
  assert.equal(await bob.locator("#rooms").evaluate((el) => el.inert), false);
  assert.equal(await bob.getAttribute("#toggle-rooms", "aria-expanded"), "true");
  assert.ok(await bob.locator("#rooms").evaluate((el) => el.contains(document.activeElement)), "focus moved into the drawer");
  await bob.keyboard.press("Escape");
  await bob.locator(".drawer.open").waitFor({ state: "detached" });
  assert.equal(await bob.evaluate(() => document.activeElement?.id), "toggle-rooms", "focus is back on its button");
  // On a wide screen the lists are always there, never inert.
  assert.equal(await alice.locator("#rooms").evaluate((el) => el.inert), false);

  await bob.fill("#input", "sent with the button");
  await bob.focus("#input");
  await bob.click("#send-button");
  await expectLine(alice, "sent with the button");
  assert.equal(await bob.evaluate(() => document.activeElement?.id), "input", "the input keeps the focus");
});

test("a long line is cut to fit the relayed line; a STATUSMSG shows in its room", async () => {
  // Multi-byte text and no spaces in the middle: every relayed line must
  // stay within 510 bytes and the pieces together must be the text.
  const long = `start ${"ä€".repeat(150)} ${"word ".repeat(120)}end`;
  await typeLine(alice, long);
  const pieces = [];
  let joined = "";
  while (!joined.endsWith("end")) {
    const line = await carol.waitFor(/^:alice!\S+ PRIVMSG #lobby :/);
    assert.ok(Buffer.byteLength(line) <= 510, `${Buffer.byteLength(line)} bytes: ${line}`);
    const piece = line.slice(line.indexOf(" :") + 2);
    assert.notEqual(piece, "", "no empty piece");
    pieces.push(piece);
    joined = pieces.join("");
  }
  assert.ok(pieces.length > 1, "the text was cut");
  assert.equal(joined, long);

  // A line to the room's ops only: in the room's buffer, marked, not a
  // conversation with someone named "@#xss".
  await typeLine(alice, "/join #xss");
  await alice.locator('.log[data-buffer="#xss"]').waitFor({ state: "visible" });
  carol.send("MODE #xss +o alice");
  await expectLine(alice, "carol sets mode +o alice");
  carol.send("PRIVMSG @#xss :for the ops");
  await expectLine(alice, "(to @) for the ops");
  assert.equal(await alice.locator('.buffer[data-name="@#xss"]').count(), 0);
});

test("names differing in a non-ASCII letter's case are different rooms (CASEMAPPING=ascii)", async () => {
  await typeLine(alice, "/join #Äpfel");
  await alice.locator('.log[data-buffer="#Äpfel"]').waitFor({ state: "visible" });
  await typeLine(alice, "/join #äpfel");
  await alice.locator('.log[data-buffer="#äpfel"]').waitFor({ state: "visible" });
  assert.equal(await alice.locator('#buffer-list .buffer[data-name="#Äpfel"]').count(), 1);
  assert.equal(await alice.locator('#buffer-list .buffer[data-name="#äpfel"]').count(), 1);
  // ASCII letters still fold: #XSS is the room already open.
  await typeLine(alice, "/join #XSS");
  await alice.locator('.log[data-buffer="#xss"]').waitFor({ state: "visible" });
  assert.equal(await alice.locator('#buffer-list .buffer[data-name="#XSS"]').count(), 0);
});

test("after a reload the room's earlier lines are shown again", async () => {
  await alice.reload();
  // The nick is remembered.
  await alice.locator("#connect-form").waitFor();
  assert.equal(await alice.inputValue("#connect-nick"), "alice");
  // The old connection must be gone before the nick is free again.
  await carol.waitFor(/:alice!\S+ QUIT/);
  await alice.fill("#connect-room", "#lobby");
  await alice.click("#connect-button");
  await expectLine(alice, "hello from carol");
  await expectLine(alice, "hi from bob");
  assert.equal(await activeLog(alice).locator(".line .text", { hasText: "hello from carol" }).count(), 1);
});

test("a server restart: the page says so, reconnects, and gets new lines", async () => {
  await server.kill();
  carol.close();
  for (const page of [alice, bob]) {
    await page.locator('#status[data-state="reconnecting"]').waitFor({ state: "visible" });
    assert.match(await page.textContent("#status"), /Reconnecting/);
  }
  await screenshot(bob, "phone-reconnecting");
  await server.start();
  for (const page of [alice, bob]) {
    await page.locator("#status").waitFor({ state: "hidden" });
  }
  carol = await RawClient.connect(server.ircPort, "carol");
  carol.send("JOIN #lobby");
  // Both browsers rejoined by themselves.
  const names = await carol.waitFor(/ 353 carol . #lobby /);
  assert.match(names, /alice/);
  assert.match(names, /bob/);
  carol.send("PRIVMSG #lobby :after the restart");
  await expectLine(alice, "after the restart");
  await expectLine(bob, "after the restart");
  // What was shown before is not shown twice.
  assert.equal(await activeLog(alice).locator(".line .text", { hasText: "hello from carol" }).count(), 1);
});

test("scrolling to the top loads older history with CHATHISTORY", async () => {
  const writer = await RawClient.connect(server.ircPort, "dave", ["echo-message"]);
  writer.send("JOIN #scroll");
  await writer.waitFor(/ 366 dave #scroll /);
  const label = (n) => `scroll line ${String(n).padStart(3, "0")}`;
  for (let n = 1; n <= 120; n += 1) writer.send(`PRIVMSG #scroll :${label(n)}`);
  // An echoed line is stored: the last echo means all 120 are.
  await writer.waitFor((line) => line.endsWith(`PRIVMSG #scroll :${label(120)}`), label(120));

  await typeLine(alice, "/join #scroll");
  const log = alice.locator('.log[data-buffer="#scroll"]');
  await log.waitFor({ state: "visible" });
  await log.locator(".line .text", { hasText: label(120) }).waitFor();
  const messages = log.locator(".line.msg .text");
  const first = await messages.count();
  assert.ok(first < 120, `only the latest page is shown at first (${first})`);
  const topBefore = await messages.first().textContent();

  // Each scroll to the top asks for the page before the oldest line.
  let shown = first;
  for (let round = 0; round < 5 && shown < 120; round += 1) {
    await log.evaluate((el) => { el.scrollTop = 0; });
    await alice.waitForFunction(
      ([selector, count]) => document.querySelectorAll(selector).length > count,
      ['.log[data-buffer="#scroll"] .line.msg', shown],
    );
    shown = await messages.count();
    if (round === 0) {
      // The line that was at the top is still in view: the page kept its place.
      const logBox = await log.boundingBox();
      const lineBox = await log.locator(".line .text", { hasText: topBefore }).boundingBox();
      assert.ok(lineBox.y >= logBox.y - 1 && lineBox.y < logBox.y + logBox.height, "the view did not jump");
    }
  }
  const texts = await messages.allTextContents();
  assert.equal(texts.length, 120, "every line once");
  assert.deepEqual(texts, Array.from({ length: 120 }, (_, i) => label(i + 1)), "in order, no duplicates");
  writer.close();
});

test("logging in with a password: a wrong one is refused clearly", async () => {
  const owner = await RawClient.connect(server.ircPort, "frank");
  owner.send("REGISTER * * :right-horse-battery");
  await owner.waitFor(/ REGISTER SUCCESS /);
  owner.send("QUIT");
  await owner.waitFor(/^ERROR /);
  owner.close();

  const page = await openUser({ width: 390, height: 844 });
  await page.goto(server.url);
  await page.fill("#connect-nick", "frank");
  await page.fill("#connect-password", "wrong");
  await page.click("#connect-button");
  const error = page.locator("#connect-error");
  await error.waitFor({ state: "visible" });
  assert.match(await error.textContent(), /Login failed.*904/);
  await screenshot(page, "phone-login-failed");

  // A nick in use: the form says so and offers another.
  await page.fill("#connect-nick", "bob");
  await page.fill("#connect-password", "");
  await page.click("#connect-button");
  await page.locator("#connect-error", { hasText: "The nick bob is taken" }).waitFor();
  assert.equal(await page.inputValue("#connect-nick"), "bob_");

  await page.fill("#connect-nick", "frank");
  await page.fill("#connect-password", "right-horse-battery");
  await page.click("#connect-button");
  await page.locator("#chat").waitFor({ state: "visible" });
  await activeLog(page).locator(".line .text", { hasText: "You are now logged in as frank" }).waitFor();
  frank = page;
});

test("a keyed room joined with its key; after a restart all six rooms, the login and typed text come back", async () => {
  carol.send("JOIN #keyed");
  await carol.waitFor(/ 366 carol #keyed /);
  carol.send("MODE #keyed +k sekrit");
  await carol.waitFor(/ MODE #keyed \+k /);
  await typeLine(frank, "/join #keyed sekrit");
  await frank.locator('.log[data-buffer="#keyed"]').waitFor({ state: "visible" });
  const rooms = ["#keyed", "#r1", "#r2", "#r3", "#r4", "#r5"];
  for (const room of rooms.slice(1)) {
    await typeLine(frank, `/join ${room}`);
    await frank.locator(`.log[data-buffer="${room}"]`).waitFor({ state: "visible" });
  }
  // A new nick: the login is still the account named on the form.
  await typeLine(frank, "/nick frankie");
  await carol.waitFor(/:frank!\S+ NICK :?frankie/);

  const sent = [];
  frank.on("websocket", (socket) => socket.on("framesent", (frame) => sent.push(String(frame.payload))));
  await server.kill();
  carol.close();
  await frank.locator('#status[data-state="reconnecting"]').waitFor({ state: "visible" });
  // Text typed while disconnected stays in the input, and the page says why.
  await typeLine(frank, "typed while away");
  await frank.locator("#input-note").waitFor({ state: "visible" });
  assert.equal(await frank.inputValue("#input"), "typed while away");

  await server.start();
  await frank.locator("#status").waitFor({ state: "hidden" });
  await frank.locator("#input-note").waitFor({ state: "hidden" });
  await activeLog(frank).locator(".line .text", { hasText: "You are now logged in as frank" }).waitFor();
  // Every room is joined again, and the view stayed where it was.
  await frank.waitForFunction((names) => names.every((name) => {
    const entry = document.querySelector(`#buffer-list .buffer[data-name="${name}"]`);
    return entry && !entry.classList.contains("parted");
  }), rooms);
  assert.equal(await activeLog(frank).getAttribute("data-buffer"), "#r5");
  const joins = sent.filter((line) => line.startsWith("JOIN "));
  for (const line of joins) {
    assert.ok(line.split(" ")[1].split(",").length <= 4, `within TARGMAX JOIN: ${line}`);
  }
  assert.match(joins[0] ?? "", /^JOIN #keyed(,#\S+)* sekrit$/, "the keyed room first, with its key");

  carol = await RawClient.connect(server.ircPort, "carol");
  carol.send("JOIN #r5");
  const names = await carol.waitFor(/ 353 carol . #r5 /);
  assert.match(names, /frankie/);
  // The kept text is sent once connected.
  await frank.press("#input", "Enter");
  await carol.waitFor(/:frankie!\S+ PRIVMSG #r5 :typed while away$/);
  assert.equal(await frank.inputValue("#input"), "");
  await screenshot(frank, "phone-after-restart");
  await frank.context().close();
});

test("no errors on the pages", () => {
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(dialogs, []);
});
