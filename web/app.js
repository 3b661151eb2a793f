// rookery's built-in web client: an ordinary IRC client speaking IRC over
// a WebSocket (the IRCv3 `text.ircv3.net` subprotocol, one line per
// message). Everything it knows comes from IRC lines; the server has no
// other API for it.
//
// Safety rule: text from the network is put on the page with textContent
// or text nodes only, never as HTML, so a message can never become markup.

/** Capabilities asked for when the server offers them. */
const WANTED_CAPS = [
  "server-time", "message-tags", "batch", "echo-message", "multi-prefix",
  "away-notify", "draft/chathistory",
];
/** Lines asked for at a time from CHATHISTORY. */
const HISTORY_PAGE = 50;
/** Lines kept per buffer; older ones leave the page. */
const MAX_LINES = 5000;
/**
 * user@host assumed before our own JOIN shows the real one: the longest
 * the server allows (USERLEN, HOSTLEN), so a relayed line still fits.
 */
const GUESS_USERHOST_BYTES = 12 + 1 + 64;
/** Lines one batch may collect before the rest are shown unbatched. */
const MAX_BATCH_LINES = 2000;
/** Batches open at once; more are not collected. */
const MAX_OPEN_BATCHES = 32;
/** Seconds to get from connecting to the server's welcome (001). */
const REGISTER_TIMEOUT_MS = 20000;
/** Quiet this long, the client asks the server for a sign of life (PING). */
const IDLE_PING_MS = 60000;
/** No line this long after our PING: the connection is dead, reconnect. */
const PING_TIMEOUT_MS = 20000;
/** Reconnect delays grow 1 s, 2 s, 4 s ... up to this. */
const MAX_BACKOFF_MS = 30000;
/** The buffer for server messages; no nick or room can have this name. */
const SERVER = "*server*";
const NICK_KEY = "rookery.nick";
/** The longest IRC line without its CR LF. */
const MAX_LINE_BYTES = 510;

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------
// IRC lines

/** Unescapes a message-tag value (IRCv3 message-tags). */
function unescapeTag(value) {
  const map = { ":": ";", s: " ", "\\": "\\", r: "\r", n: "\n" };
  return value.replace(/\\(.?)/g, (_, c) => map[c] ?? c);
}

/** Splits a line into tags, source, command and parameters. */
function parseLine(line) {
  const msg = { tags: {}, source: "", command: "", params: [] };
  let rest = line;
  // Only ASCII spaces separate words: other white space is text.
  const skipSpaces = (text) => text.replace(/^ +/, "");
  // The end of a leading word; a line that is nothing but it ends there.
  const wordEnd = (text) => {
    const end = text.indexOf(" ");
    return end < 0 ? text.length : end;
  };
  if (rest.startsWith("@")) {
    const end = wordEnd(rest);
    for (const tag of rest.slice(1, end).split(";")) {
      if (!tag) continue;
      const eq = tag.indexOf("=");
      if (eq < 0) msg.tags[tag] = "";
      else msg.tags[tag.slice(0, eq)] = unescapeTag(tag.slice(eq + 1));
    }
    rest = skipSpaces(rest.slice(end + 1));
  }
  if (rest.startsWith(":")) {
    const end = wordEnd(rest);
    msg.source = rest.slice(1, end);
    rest = skipSpaces(rest.slice(end + 1));
  }
  while (rest.length > 0) {
    if (rest.startsWith(":")) {
      msg.params.push(rest.slice(1));
      break;
    }
    const end = rest.indexOf(" ");
    if (end < 0) {
      msg.params.push(rest);
      break;
    }
    msg.params.push(rest.slice(0, end));
    rest = skipSpaces(rest.slice(end + 1));
  }
  const first = msg.params.shift() ?? "";
  msg.command = first.toUpperCase();
  msg.nick = msg.source.split("!")[0];
  return msg;
}

/** Removes IRC formatting (bold, colours, italics ...): shown as plain text. */
function stripFormatting(text) {
  return text
    .replace(/\x03(\d{1,2}(,\d{1,2})?)?/g, "")
    .replace(/\x04([0-9a-fA-F]{6}(,[0-9a-fA-F]{6})?)?/g, "")
    .replace(/[\x02\x0f\x11\x16\x1d\x1e\x1f]/g, "");
}

// ---------------------------------------------------------------------------
// State

const state = {
  socket: null,
  /** The nick the user asked for; kept across reconnects. */
  wantedNick: "",
  password: "",
  /** The account to log in to, fixed when the form is sent: a later
   *  /nick does not change whose password it is. */
  account: "",
  /** The nick the server knows us by. */
  nick: "",
  /** Our user@host as others see it, from our own JOIN; "" until then. */
  userhost: "",
  registered: false,
  /** Whether a connection ever completed: a nick taken on a reconnect is
   *  then most likely our own old connection's, and nick_ is used. */
  everRegistered: false,
  /** The user chose to stop (or login failed): no reconnect. */
  stopped: false,
  backoffMs: 1000,
  /** When the last line arrived, and when our unanswered PING left (0: none). */
  lastLineAt: 0,
  pingSentAt: 0,
  reconnectTimer: 0,
  /** Other nicks tried in this registration since the wanted one was taken. */
  nickTries: 0,
  registerTimer: 0,
  offered: new Map(),
  caps: new Set(),
  isupport: {
    prefixModes: "ov", prefixChars: "@+", chantypes: "#&", casemapping: "ascii", chathistory: 100,
    /** Rooms one JOIN may name (TARGMAX JOIN, else MAXTARGETS); 1 until told. */
    joinTargets: 1,
    maxTargets: 0,
    nicklen: 30,
    /** Whether the server offers MONITOR (to learn when a nick frees). */
    monitor: false,
    statusmsg: "",
  },
  /** Room keys by folded name: given with /join, changed by MODE +k/-k. */
  keys: new Map(),
  buffers: new Map(),
  active: null,
  batches: new Map(),
  /** CHATHISTORY requests in the order sent: the server answers in order. */
  historyQueue: [],
  /** The LIST being received, then shown. */
  listing: [],
  /** Rooms to join once registered. */
  pendingJoins: [],
  /** The folded name of a room whose JOIN should open it on screen. */
  wantShow: "",
  /** That room's name as typed, to fold again once CASEMAPPING is known. */
  wantShowName: "",
};

/** Folds a name for comparison as the server's CASEMAPPING does. */
function fold(name) {
  // ASCII letters only: the server does not fold other letters.
  let lower = name.replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
  const mapping = state.isupport.casemapping;
  if (mapping === "rfc1459" || mapping === "strict-rfc1459") {
    lower = lower.replace(/\[/g, "{").replace(/\]/g, "}").replace(/\\/g, "|");
    if (mapping === "rfc1459") lower = lower.replace(/~/g, "^");
  }
  return lower;
}

function isRoom(name) {
  return name.length > 0 && state.isupport.chantypes.includes(name[0]);
}

function isMe(nick) {
  return fold(nick) === fold(state.nick);
}

// ---------------------------------------------------------------------------
// Buffers: one per room, per private conversation, and one for the server

/** Private conversations open at once; more go to the server buffer. */
const MAX_QUERIES = 100;
/** Lines kept in a buffer not in view. */
const MAX_HIDDEN_LINES = 1000;

function getBuffer(name, create = true) {
  const key = fold(name);
  let buffer = state.buffers.get(key);
  if (!buffer && create && name !== SERVER && !isRoom(name)) {
    const queries = [...state.buffers.values()].filter((b) => b.kind === "query").length;
    if (queries >= MAX_QUERIES) return getBuffer(SERVER);
  }
  if (!buffer && create) {
    const log = document.createElement("div");
    log.className = "log";
    // role=log: screen readers read new lines out, politely.
    log.setAttribute("role", "log");
    log.hidden = true;
    log.dataset.buffer = name;
    $("messages").append(log);
    buffer = {
      name,
      kind: name === SERVER ? "server" : isRoom(name) ? "room" : "query",
      log,
      lines: [],
      msgids: new Set(),
      members: new Map(),
      namesDone: true,
      topic: "",
      unread: 0,
      highlights: 0,
      joined: false,
      stickBottom: true,
      loadingOlder: false,
      noMoreOlder: false,
    };
    log.addEventListener("scroll", () => onLogScroll(buffer));
    state.buffers.set(key, buffer);
    renderBufferList();
  }
  return buffer;
}

function showBuffer(buffer) {
  if (state.active) state.active.log.hidden = true;
  state.active = buffer;
  buffer.log.hidden = false;
  buffer.unread = 0;
  buffer.highlights = 0;
  if (buffer.stickBottom) buffer.log.scrollTop = buffer.log.scrollHeight;
  $("buffer-name").textContent = buffer.kind === "server" ? "Server" : buffer.name;
  $("buffer-topic").textContent = stripFormatting(buffer.topic);
  document.body.classList.toggle("has-members", buffer.kind === "room");
  renderBufferList();
  renderMembers();
  closeDrawers();
  maybeFillView(buffer);
}

function closeBuffer(buffer) {
  if (buffer.kind === "server") return;
  buffer.log.remove();
  state.buffers.delete(fold(buffer.name));
  if (state.active === buffer) {
    state.active = null;
    showBuffer(getBuffer(SERVER));
  }
  renderBufferList();
}

/** Renders the list of open buffers with their unread and mention counts. */
function renderBufferList() {
  const list = $("buffer-list");
  list.replaceChildren();
  let total = 0;
  for (const buffer of state.buffers.values()) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "buffer";
    button.dataset.name = buffer.name;
    if (buffer === state.active) button.classList.add("active");
    if (buffer.kind === "room" && !buffer.joined) button.classList.add("parted");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = buffer.kind === "server" ? "Server" : buffer.name;
    button.append(name);
    if (buffer.unread > 0) {
      const badge = document.createElement("span");
      // The count of unread lines; red when some of them mention us.
      badge.className = buffer.highlights > 0 ? "unread mention" : "unread";
      badge.textContent = String(buffer.unread);
      badge.title = `${buffer.unread} unread, ${buffer.highlights} for you`;
      button.append(badge);
      total += buffer.unread;
    }
    button.addEventListener("click", () => showBuffer(buffer));
    item.append(button);
    list.append(item);
  }
  // The drawer button carries the total, so a phone user sees new lines.
  const badge = $("unread-total");
  badge.hidden = total === 0;
  badge.textContent = String(total);
  $("toggle-rooms").setAttribute("aria-label", total > 0 ? `Rooms, ${total} unread` : "Rooms");
  document.title = total > 0 ? `(${total}) rookery` : "rookery";
}

// ---------------------------------------------------------------------------
// Lines on the page

/** The time a line was said: the server's time tag, else now. */
function lineTime(msg) {
  const time = msg.tags.time ? Date.parse(msg.tags.time) : NaN;
  return Number.isNaN(time) ? Date.now() : time;
}

function formatTime(ms) {
  const date = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** Appends text to `parent`, making http(s) URLs links; text stays text. */
function appendLinkified(parent, text) {
  const url = /\bhttps?:\/\/[^\s<>"]+/gi;
  let at = 0;
  for (const match of text.matchAll(url)) {
    // Trailing punctuation usually ends the sentence, not the URL.
    const href = match[0].replace(/[.,;:!?)\]}'*]+$/, "");
    parent.append(document.createTextNode(text.slice(at, match.index)));
    const link = document.createElement("a");
    link.href = href;
    link.textContent = href;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    parent.append(link);
    at = match.index + href.length;
  }
  parent.append(document.createTextNode(text.slice(at)));
}

/** A small stable colour class per nick, so speakers are told apart. */
function nickClass(nick) {
  let hash = 0;
  for (const ch of fold(nick)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return `nick-c${hash % 8}`;
}

/**
 * Builds one line's element. `kind` is "msg", "action", "notice" or
 * "event"; `nick` may be empty for events.
 */
function lineElement(time, kind, nick, text, mine, mention) {
  const line = document.createElement("div");
  line.className = `line ${kind}`;
  if (mine) line.classList.add("mine");
  if (mention) line.classList.add("mention");
  const stamp = document.createElement("time");
  stamp.dateTime = new Date(time).toISOString();
  stamp.textContent = formatTime(time);
  line.append(stamp);
  if (kind === "msg" || kind === "notice") {
    const who = document.createElement("span");
    who.className = `nick ${nickClass(nick)}`;
    who.textContent = kind === "notice" ? `-${nick}-` : nick;
    line.append(who);
  }
  const body = document.createElement("span");
  body.className = "text";
  if (kind === "action") body.append(document.createTextNode(`* ${nick} `));
  appendLinkified(body, stripFormatting(text));
  line.append(body);
  return line;
}

/**
 * The first line at or below `top`: a binary search, as lines are in page
 * order, so only a few layout reads however long the buffer is.
 */
function firstVisible(lines, top) {
  let low = 0;
  let high = lines.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (lines[mid].el.offsetTop < top) low = mid + 1;
    else high = mid;
  }
  return lines[low]?.el ?? null;
}

/**
 * Puts a line into its buffer in time order, once per msgid. Returns
 * false for a line already shown. Lines of the same millisecond keep the
 * order they arrive in; `early` puts a line before those of its
 * millisecond already shown (a page of older history, read backwards).
 */
function insertLine(buffer, record, early = false) {
  if (record.msgid) {
    if (buffer.msgids.has(record.msgid)) return false;
    buffer.msgids.add(record.msgid);
  }
  const lines = buffer.lines;
  // Binary search for the first line later than this one: history pages
  // arrive before, after or between what is shown.
  let low = 0;
  let high = lines.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (lines[mid].time < record.time || (!early && lines[mid].time === record.time)) low = mid + 1;
    else high = mid;
  }
  const log = buffer.log;
  const wasAtBottom = buffer.stickBottom;
  // Lines put above what the reader looks at must not move the view:
  // remember where the first visible line is and restore it after.
  let anchor = null;
  let anchorTop = 0;
  if (!wasAtBottom && !log.hidden) {
    anchor = firstVisible(lines, log.scrollTop);
    anchorTop = anchor ? anchor.offsetTop : 0;
  }
  log.insertBefore(record.el, lines[low]?.el ?? null);
  lines.splice(low, 0, record);
  while (lines.length > (log.hidden ? MAX_HIDDEN_LINES : MAX_LINES)) {
    const dropped = lines.shift();
    dropped.el.remove();
    if (dropped.msgid) buffer.msgids.delete(dropped.msgid);
    buffer.noMoreOlder = true;
  }
  if (wasAtBottom) log.scrollTop = log.scrollHeight;
  else if (anchor) log.scrollTop += anchor.offsetTop - anchorTop;
  return true;
}

/**
 * Shows a quiet line (join, part, mode ...) or a server message. Without
 * the server's time it goes after the buffer's last line, whatever the
 * browser's clock says.
 */
function addEvent(buffer, text, time = Math.max(Date.now(), buffer.lines.at(-1)?.time ?? 0)) {
  insertLine(buffer, { time, msgid: "", el: lineElement(time, "event", "", text, false, false) });
}

function mentions(text) {
  if (!state.nick) return false;
  const escaped = state.nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\w])${escaped}($|[^\\w])`, "i").test(text);
}

/** Shows a PRIVMSG or NOTICE; `live` is false for history, `early` as insertLine's. */
function showMessage(msg, live, early = false) {
  const [rawTarget = "", rawText = ""] = msg.params;
  // STATUSMSG (`@#room`): to the room's ops only; shown in the room, marked.
  let target = rawTarget;
  let statusTo = "";
  while (target.length > 1 && state.isupport.statusmsg.includes(target[0]) && !isRoom(target)) {
    statusTo += target[0];
    target = target.slice(1);
  }
  if (!isRoom(target)) {
    target = rawTarget;
    statusTo = "";
  }
  const mine = isMe(msg.nick);
  let bufferName;
  if (isRoom(target)) bufferName = target;
  // A source without nick!user@host is the server itself.
  else if (!msg.source.includes("!") && !mine) bufferName = SERVER;
  else bufferName = mine ? target : msg.nick;
  if (msg.command === "NOTICE" && !isRoom(target) && !getBuffer(bufferName, false)) {
    // A notice to us from someone we are not talking to: the server buffer
    // (or the one being read), not a new conversation.
    bufferName = state.active?.name ?? SERVER;
  }
  const buffer = getBuffer(bufferName);
  let kind = msg.command === "NOTICE" ? "notice" : "msg";
  let text = rawText;
  if (text.startsWith("\x01")) {
    const ctcp = text.replace(/^\x01|\x01$/g, "");
    if (!ctcp.startsWith("ACTION")) return; // Other CTCP is not for people.
    kind = "action";
    text = ctcp.slice(7);
  }
  if (statusTo) text = `(to ${statusTo}) ${text}`;
  const mention = !mine && (buffer.kind === "query" || mentions(text));
  const time = lineTime(msg);
  const el = lineElement(time, kind, msg.nick, text, mine, mention && buffer.kind === "room");
  const added = insertLine(buffer, { time, msgid: msg.tags.msgid ?? "", el }, early);
  if (added && live && !mine && (buffer !== state.active || document.hidden)) {
    buffer.unread += 1;
    if (mention) buffer.highlights += 1;
    renderBufferList();
  }
}

// ---------------------------------------------------------------------------
// Members

/** Mode letters of a NAMES entry's prefixes, and the bare nick. */
function splitPrefixes(entry) {
  const modes = new Set();
  let i = 0;
  while (i < entry.length && state.isupport.prefixChars.includes(entry[i])) {
    modes.add(state.isupport.prefixModes[state.isupport.prefixChars.indexOf(entry[i])]);
    i += 1;
  }
  return [entry.slice(i), modes];
}

/** The highest prefix of a member: its rank and its sign. */
function rank(member) {
  const modes = state.isupport.prefixModes;
  for (let i = 0; i < modes.length; i += 1) {
    if (member.modes.has(modes[i])) return [i, state.isupport.prefixChars[i]];
  }
  return [modes.length, ""];
}

let membersQueued = false;
/** Redraws the member list once per frame, however many changes came. */
function renderMembers() {
  if (membersQueued) return;
  membersQueued = true;
  requestAnimationFrame(() => {
    membersQueued = false;
    const list = $("member-list");
    list.replaceChildren();
    const buffer = state.active;
    if (!buffer || buffer.kind !== "room") {
      $("member-count").textContent = "Members";
      return;
    }
    const members = [...buffer.members.values()].sort((a, b) => {
      const diff = rank(a)[0] - rank(b)[0];
      return diff !== 0 ? diff : fold(a.nick).localeCompare(fold(b.nick));
    });
    $("member-count").textContent = `Members (${members.length})`;
    for (const member of members) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = `member ${nickClass(member.nick)}`;
      if (member.away) button.classList.add("away");
      button.textContent = rank(member)[1] + member.nick;
      button.addEventListener("click", () => showBuffer(getBuffer(member.nick)));
      item.append(button);
      list.append(item);
    }
  });
}

function addMember(buffer, nick, modes = new Set()) {
  buffer.members.set(fold(nick), { nick, modes, away: false });
  if (buffer === state.active) renderMembers();
}

function removeMember(buffer, nick) {
  const had = buffer.members.delete(fold(nick));
  if (had && buffer === state.active) renderMembers();
  return had;
}

// ---------------------------------------------------------------------------
// History

/** Asks for history of a room; answers come back in order. */
function requestHistory(buffer, kind, ref) {
  if (!state.caps.has("draft/chathistory") || buffer.kind !== "room") return;
  const limit = Math.min(HISTORY_PAGE, state.isupport.chathistory || HISTORY_PAGE);
  state.historyQueue.push({ buffer, kind, limit });
  send(`CHATHISTORY ${kind} ${buffer.name} ${ref} ${limit}`);
}

/** After joining: what was missed since the newest line shown, or the latest. */
function fetchRecent(buffer) {
  const newest = [...buffer.lines].reverse().find((l) => l.msgid);
  if (newest) requestHistory(buffer, "AFTER", `msgid=${newest.msgid}`);
  else requestHistory(buffer, "LATEST", "*");
}

function fetchOlder(buffer) {
  if (buffer.kind !== "room" || buffer.loadingOlder || buffer.noMoreOlder || !buffer.joined) return;
  const oldest = buffer.lines.find((l) => l.msgid);
  if (!oldest || !state.caps.has("draft/chathistory")) return;
  buffer.loadingOlder = true;
  requestHistory(buffer, "BEFORE", `msgid=${oldest.msgid}`);
}

function onLogScroll(buffer) {
  const log = buffer.log;
  buffer.stickBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 8;
  if (log.scrollTop < 40) fetchOlder(buffer);
}

/** A view without a scroll bar cannot be scrolled up: fetch until it has one. */
function maybeFillView(buffer) {
  const log = buffer.log;
  if (!log.hidden && log.scrollHeight <= log.clientHeight) fetchOlder(buffer);
}

/** A chathistory batch ended: its lines, then the request it answered. */
function finishHistory(target, lines) {
  const buffer = getBuffer(target, false);
  // The answer to the oldest request, unless it is playback on join. By
  // name: the buffer may have been closed and opened again since.
  const head = state.historyQueue[0];
  const answers = head !== undefined && fold(head.buffer.name) === fold(target);
  if (answers) state.historyQueue.shift();
  // A page before the oldest line goes in newest first, each line ahead of
  // the last: lines of one millisecond then keep the batch's order.
  const backwards = answers && head.kind === "BEFORE";
  let added = 0;
  buffer?.log.setAttribute("aria-busy", "true");
  for (const msg of backwards ? [...lines].reverse() : lines) {
    if (buffer && (msg.command === "PRIVMSG" || msg.command === "NOTICE")) {
      const before = buffer.lines.length;
      // Lines missed while disconnected are new to the reader.
      showMessage(msg, answers && head.kind === "AFTER", backwards);
      added += buffer.lines.length - before;
    }
  }
  buffer?.log.removeAttribute("aria-busy");
  if (answers && buffer) {
    if (head.kind === "BEFORE") {
      buffer.loadingOlder = false;
      if (added === 0) buffer.noMoreOlder = true;
    }
    if (head.kind === "LATEST" && lines.length < head.limit) buffer.noMoreOlder = true;
    // A full page after a reconnect: more was missed, read on.
    if (head.kind === "AFTER" && lines.length >= head.limit) fetchRecent(buffer);
    maybeFillView(buffer);
  }
}

/** A refused CHATHISTORY (such as a msgid gone after a restart). */
function historyFailed() {
  const head = state.historyQueue.shift();
  if (!head) return;
  head.buffer.loadingOlder = false;
  if (head.kind === "AFTER") requestHistory(head.buffer, "LATEST", "*");
  else if (head.kind === "BEFORE") head.buffer.noMoreOlder = true;
}

// ---------------------------------------------------------------------------
// The connection

function setStatus(kind, text) {
  const status = $("status");
  status.dataset.state = kind;
  status.textContent = text;
  status.hidden = kind === "connected";
}

/** Sends one IRC line; a line break inside would start a second command. */
function send(line) {
  if (state.socket?.readyState !== WebSocket.OPEN) return false;
  state.socket.send(line.replace(/[\r\n]+/g, " "));
  return true;
}

/** Whether lines typed now reach the server. */
function connected() {
  return state.registered && state.socket?.readyState === WebSocket.OPEN;
}

function connect() {
  clearTimeout(state.reconnectTimer);
  // A socket still around is dropped; its events are ignored from now on.
  const old = state.socket;
  state.socket = null;
  old?.close();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/webirc`, ["text.ircv3.net"]);
  state.socket = socket;
  state.registered = false;
  state.caps = new Set();
  state.offered = new Map();
  state.batches = new Map();
  state.historyQueue = [];
  state.nick = state.wantedNick;
  state.nickTries = 0;
  state.lastLineAt = Date.now();
  state.pingSentAt = 0;
  setStatus("connecting", "Connecting…");
  clearTimeout(state.registerTimer);
  state.registerTimer = setTimeout(() => {
    if (state.socket !== socket || state.registered) return;
    if (!$("connect").hidden) {
      failRegistration("The server did not let us in within 20 seconds. Try again.");
      return;
    }
    state.socket = null;
    socket.close();
    onDisconnect();
  }, REGISTER_TIMEOUT_MS);
  socket.addEventListener("open", () => {
    if (state.socket !== socket) return;
    send("CAP LS 302");
    send(`NICK ${state.wantedNick}`);
    send(`USER ${state.wantedNick} 0 * :${state.wantedNick}`);
  });
  socket.addEventListener("message", (event) => {
    if (state.socket !== socket || typeof event.data !== "string") return;
    state.lastLineAt = Date.now();
    state.pingSentAt = 0;
    onLine(event.data);
  });
  socket.addEventListener("close", () => {
    if (state.socket !== socket) return;
    state.socket = null;
    onDisconnect();
  });
}

/**
 * A connection can die without a close event (a laptop sleeps, a network
 * goes away): PING when quiet, and give up on it when nothing answers.
 */
function checkAlive(now = Date.now()) {
  const socket = state.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  if (state.pingSentAt > 0) {
    if (now - state.pingSentAt < PING_TIMEOUT_MS) return;
    state.socket = null;
    socket.close();
    onDisconnect();
  } else if (now - state.lastLineAt >= IDLE_PING_MS) {
    pingNow();
  }
}

/** Asks for a sign of life now; checkAlive gives up without one. */
function pingNow() {
  if (state.pingSentAt > 0 || !send(`PING :alive`)) return;
  state.pingSentAt = Date.now();
}

/** The connection is gone: try again later, with growing delays. */
function onDisconnect() {
  for (const buffer of state.buffers.values()) {
    buffer.loadingOlder = false;
  }
  // Reconnect by ourselves only from the chat; from the connect screen
  // the user tries again.
  if (state.stopped || !$("connect").hidden) {
    if (!state.stopped) showConnectScreen("Could not reach the server, or it closed the connection.");
    return;
  }
  const delay = state.backoffMs;
  state.backoffMs = Math.min(state.backoffMs * 2, MAX_BACKOFF_MS);
  const until = Date.now() + delay;
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) {
      connect();
      return;
    }
    setStatus("reconnecting", `Disconnected. Reconnecting in ${left} s…`);
    state.reconnectTimer = setTimeout(tick, Math.min(1000, until - Date.now()));
  };
  tick();
}

function showConnectScreen(error) {
  $("connect").hidden = false;
  $("chat").hidden = true;
  $("connect-button").disabled = false;
  if (error) {
    $("connect-error").textContent = error;
    $("connect-error").hidden = false;
  }
}

/** Registration could not finish: back to the form, with the reason. */
function failRegistration(error, suggestion) {
  state.stopped = true;
  send("QUIT");
  state.socket?.close();
  if (suggestion) $("connect-nick").value = suggestion;
  // Also after a reconnect (a password changed meanwhile): the rooms that
  // were open are joined again once the form gets us in.
  showConnectScreen(error);
}

function requestCaps() {
  const wanted = WANTED_CAPS.filter((cap) => state.offered.has(cap));
  if (state.password) {
    const mechs = state.offered.get("sasl");
    if (mechs === undefined || (mechs !== "" && !mechs.split(",").includes("PLAIN"))) {
      failRegistration("This server does not offer password login (SASL PLAIN).");
      return;
    }
    wanted.push("sasl");
  }
  if (wanted.length > 0) send(`CAP REQ :${wanted.join(" ")}`);
  else send("CAP END");
}

/** SASL PLAIN with the account named on the form (no authzid). */
function saslPlain() {
  const bytes = new TextEncoder().encode(`\0${state.account}\0${state.password}`);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  const encoded = btoa(binary);
  // Sent in 400-byte pieces; an exact multiple ends with "+".
  for (let i = 0; i < encoded.length; i += 400) send(`AUTHENTICATE ${encoded.slice(i, i + 400)}`);
  if (encoded.length % 400 === 0) send("AUTHENTICATE +");
}

function onCap(msg) {
  const sub = (msg.params[1] ?? "").toUpperCase();
  const more = msg.params[2] === "*";
  const list = msg.params[msg.params.length - 1] ?? "";
  if (sub === "LS" || sub === "NEW") {
    for (const item of list.split(" ").filter(Boolean)) {
      const eq = item.indexOf("=");
      if (eq < 0) state.offered.set(item, "");
      else state.offered.set(item.slice(0, eq), item.slice(eq + 1));
    }
    if (sub === "LS" && !more && !state.registered) requestCaps();
  } else if (sub === "ACK") {
    for (const cap of list.split(" ").filter(Boolean)) {
      if (cap.startsWith("-")) state.caps.delete(cap.slice(1));
      else state.caps.add(cap);
    }
    if (state.registered) return;
    if (state.caps.has("sasl") && state.password) send("AUTHENTICATE PLAIN");
    else send("CAP END");
  } else if (sub === "NAK") {
    if (!state.registered) {
      if (state.password) failRegistration("The server refused password login.");
      else send("CAP END");
    }
  } else if (sub === "DEL") {
    for (const cap of list.split(" ")) state.caps.delete(cap);
  }
}

/** 005: the limits and names this server uses. */
function onIsupport(msg) {
  for (const token of msg.params.slice(1, -1)) {
    const [key, value = ""] = token.split("=");
    if (key === "PREFIX") {
      const match = /^\((\w*)\)(.*)$/.exec(value);
      if (match) {
        state.isupport.prefixModes = match[1];
        state.isupport.prefixChars = match[2];
      }
    } else if (key === "CHANTYPES") {
      state.isupport.chantypes = value;
    } else if (key === "CASEMAPPING") {
      state.isupport.casemapping = value;
    } else if (key === "CHATHISTORY") {
      state.isupport.chathistory = Number(value) || 100;
    } else if (key === "NICKLEN") {
      state.isupport.nicklen = Number(value) || 30;
    } else if (key === "MONITOR") {
      state.isupport.monitor = true;
    } else if (key === "MAXTARGETS") {
      state.isupport.maxTargets = Number(value) || 0;
    } else if (key === "STATUSMSG") {
      state.isupport.statusmsg = value;
    } else if (key === "TARGMAX") {
      for (const pair of value.split(",")) {
        const [command, limit] = pair.split(":");
        // An empty limit means none; a number is taken as it is.
        if (command.toUpperCase() === "JOIN") state.isupport.joinTargets = limit ? Number(limit) || 1 : Infinity;
      }
    }
  }
  if (state.wantShow) state.wantShow = fold(state.wantShowName);
}

/**
 * JOINs for these rooms, keyed ones first (a key list pairs with the
 * first rooms), each within the server's target limit and 512 bytes.
 */
function joinLines(rooms) {
  const withKey = rooms.filter((room) => state.keys.has(fold(room)));
  const without = rooms.filter((room) => !state.keys.has(fold(room)));
  const limit = Math.max(1, Math.min(state.isupport.joinTargets, state.isupport.maxTargets || Infinity));
  const encoder = new TextEncoder();
  const lines = [];
  let names = [];
  let keys = [];
  const line = (n, k) => `JOIN ${n.join(",")}${k.length > 0 ? ` ${k.join(",")}` : ""}`;
  const flush = () => {
    if (names.length > 0) lines.push(line(names, keys));
    names = [];
    keys = [];
  };
  for (const room of [...withKey, ...without]) {
    const key = state.keys.get(fold(room));
    // Keyless rooms may follow keyed ones: keys pair with the first rooms.
    const nextNames = [...names, room];
    const nextKeys = key === undefined ? keys : [...keys, key];
    if (names.length >= limit || encoder.encode(line(nextNames, nextKeys)).length > MAX_LINE_BYTES) flush();
    names.push(room);
    if (key !== undefined) keys.push(key);
  }
  flush();
  return lines;
}

/** 001: we are in. Rejoin what was open, or the room asked for. */
function onWelcome(msg) {
  clearTimeout(state.registerTimer);
  state.registered = true;
  state.nick = msg.params[0];
  // In under another nick: MONITOR says when ours is free to take back.
  if (!isMe(state.wantedNick) && state.isupport.monitor) send(`MONITOR + ${state.wantedNick}`);
  state.backoffMs = 1000;
  localStorage.setItem(NICK_KEY, state.wantedNick);
  setStatus("connected", "");
  $("connect").hidden = true;
  $("chat").hidden = false;
  const server = getBuffer(SERVER);
  if (!state.active) showBuffer(server);
  const open = [...state.buffers.values()].filter((b) => b.kind === "room" && b.joined).map((b) => b.name);
  const rooms = [...new Set([...open, ...state.pendingJoins])];
  for (const buffer of state.buffers.values()) buffer.joined = false;
  state.everRegistered = true;
  // The room list comes after the joins (refreshListSoon), or now.
  if (rooms.length > 0) joinLines(rooms).forEach(send);
  else send("LIST");
  state.pendingJoins = [];
  // Text kept while disconnected can be sent now.
  $("input-note").hidden = true;
  $("input").removeAttribute("aria-invalid");
}

function onJoin(msg) {
  const room = msg.params[0];
  const buffer = getBuffer(room);
  if (isMe(msg.nick)) {
    const bang = msg.source.indexOf("!");
    if (bang > 0) state.userhost = msg.source.slice(bang + 1);
    buffer.name = room;
    buffer.log.dataset.buffer = room;
    buffer.joined = true;
    buffer.members = new Map();
    buffer.namesDone = true;
    buffer.noMoreOlder = false;
    renderBufferList();
    // Only the room asked for is brought into view, or the first room
    // joined when nothing but the server buffer is open; never a room
    // rejoined after a reconnect.
    const onlyServer = [...state.buffers.values()].every((b) => b === buffer || b.kind === "server");
    if (state.wantShow === fold(room) || (!state.wantShow && onlyServer && state.active?.kind === "server")) {
      state.wantShow = "";
      showBuffer(buffer);
    }
    fetchRecent(buffer);
    refreshListSoon();
    return;
  }
  addMember(buffer, msg.nick);
  addEvent(buffer, `→ ${msg.nick} joined`, lineTime(msg));
}

function onPart(msg) {
  const buffer = getBuffer(msg.params[0], false);
  if (!buffer) return;
  if (isMe(msg.nick)) {
    buffer.joined = false;
    state.keys.delete(fold(buffer.name));
    closeBuffer(buffer);
    refreshListSoon();
    return;
  }
  removeMember(buffer, msg.nick);
  const reason = msg.params[1] ? ` (${msg.params[1]})` : "";
  addEvent(buffer, `← ${msg.nick} left${reason}`, lineTime(msg));
}

function onKick(msg) {
  const [room, nick, reason = ""] = msg.params;
  const buffer = getBuffer(room, false);
  if (!buffer) return;
  removeMember(buffer, nick);
  addEvent(buffer, `${nick} was kicked by ${msg.nick}${reason ? ` (${reason})` : ""}`, lineTime(msg));
  if (isMe(nick)) {
    buffer.joined = false;
    buffer.members = new Map();
    renderBufferList();
    renderMembers();
  }
}

/** Alternative nicks tried on a reconnect before giving up. */
const MAX_NICK_TRIES = 4;

/**
 * A nick for try `n` when `nick` is taken, within NICKLEN: nick_ first,
 * then a short random number, so two tries do not collide the same way.
 */
function otherNick(nick, n) {
  const suffix = n === 0 ? "_" : String(Math.floor(Math.random() * 1000));
  return `${nick.slice(0, Math.max(1, state.isupport.nicklen - suffix.length))}${suffix}`;
}

/**
 * After a reconnect under another nick (the old connection still held
 * ours), take the nick back as soon as its holder leaves or renames.
 */
function regainNick(freed) {
  if (fold(freed) === fold(state.wantedNick) && !isMe(state.wantedNick)) send(`NICK ${state.wantedNick}`);
}

function onQuit(msg) {
  regainNick(msg.nick);
  for (const buffer of state.buffers.values()) {
    if (removeMember(buffer, msg.nick)) {
      addEvent(buffer, `← ${msg.nick} quit${msg.params[0] ? ` (${msg.params[0]})` : ""}`, lineTime(msg));
    }
  }
}

function onNick(msg) {
  const newNick = msg.params[0];
  if (!isMe(msg.nick)) regainNick(msg.nick);
  if (isMe(msg.nick)) {
    // The wanted nick is ours again (or another was chosen): stop watching.
    if (state.isupport.monitor && fold(newNick) === fold(state.wantedNick)) send(`MONITOR - ${state.wantedNick}`);
    state.nick = newNick;
    state.wantedNick = newNick;
    localStorage.setItem(NICK_KEY, newNick);
  }
  for (const buffer of state.buffers.values()) {
    const member = buffer.members.get(fold(msg.nick));
    if (member) {
      buffer.members.delete(fold(msg.nick));
      member.nick = newNick;
      buffer.members.set(fold(newNick), member);
      addEvent(buffer, `${msg.nick} is now ${newNick}`, lineTime(msg));
      if (buffer === state.active) renderMembers();
    }
  }
  const query = getBuffer(msg.nick, false);
  if (query && query.kind === "query" && !getBuffer(newNick, false)) {
    state.buffers.delete(fold(msg.nick));
    query.name = newNick;
    state.buffers.set(fold(newNick), query);
    addEvent(query, `${msg.nick} is now ${newNick}`, lineTime(msg));
    if (query === state.active) $("buffer-name").textContent = newNick;
    renderBufferList();
  }
}

/** Channel MODE: shown, and prefix modes change members' signs. */
function onMode(msg) {
  const [target, modes = "", ...args] = msg.params;
  const buffer = getBuffer(target, false);
  if (!buffer || buffer.kind !== "room") return;
  addEvent(buffer, `${msg.nick} sets mode ${msg.params.slice(1).join(" ")}`, lineTime(msg));
  let adding = true;
  let argIndex = 0;
  for (const ch of modes) {
    if (ch === "+" || ch === "-") {
      adding = ch === "+";
    } else if (state.isupport.prefixModes.includes(ch)) {
      const member = buffer.members.get(fold(args[argIndex] ?? ""));
      argIndex += 1;
      if (member) {
        if (adding) member.modes.add(ch);
        else member.modes.delete(ch);
      }
    } else if (ch === "k") {
      // The key we rejoin with follows the room's.
      if (adding && args[argIndex]) state.keys.set(fold(target), args[argIndex]);
      else if (!adding) state.keys.delete(fold(target));
      argIndex += 1;
    } else if ("beIfjl".includes(ch) && (adding || "beI".includes(ch))) {
      // Modes with a parameter (list modes, key, limit): skip it.
      argIndex += 1;
    }
  }
  if (buffer === state.active) renderMembers();
}

function onTopic(buffer, topic) {
  buffer.topic = topic;
  if (buffer === state.active) $("buffer-topic").textContent = stripFormatting(topic);
}

let listTimer = 0;
/**
 * Asks for the room list again a moment after our own joins and parts
 * (one LIST for a burst of them, as after a reconnect), so its counts
 * stay near the truth on a wide screen where it is always in view.
 */
function refreshListSoon() {
  clearTimeout(listTimer);
  listTimer = setTimeout(() => send("LIST"), 1000);
}

/** LIST replies, shown when complete. */
function renderRoomList() {
  const list = $("room-list");
  list.replaceChildren();
  const rooms = [...state.listing].sort((a, b) => b.count - a.count || a.name.localeCompare(b.name));
  for (const room of rooms) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "room";
    button.dataset.name = room.name;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = room.name;
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = String(room.count);
    const topic = document.createElement("span");
    topic.className = "topic";
    topic.textContent = stripFormatting(room.topic);
    button.append(name, count, topic);
    button.addEventListener("click", () => joinRoom(room.name));
    item.append(button);
    list.append(item);
  }
  if (rooms.length === 0) {
    const item = document.createElement("li");
    item.className = "empty";
    item.textContent = "No rooms yet: create one above.";
    list.append(item);
  }
}

function joinRoom(name, key = "") {
  const existing = getBuffer(name, false);
  if (existing?.joined) {
    showBuffer(existing);
    return;
  }
  if (key) state.keys.set(fold(name), key);
  setWantShow(name);
  send(key ? `JOIN ${name} ${key}` : `JOIN ${name}`);
}

/** The room whose JOIN should open it on screen; folded again after 005. */
function setWantShow(name) {
  state.wantShowName = name;
  state.wantShow = name ? fold(name) : "";
}

/** Numerics and errors worth showing go to the server buffer or the room. */
function showNumeric(msg) {
  const params = msg.params.slice(1);
  const target = params[0] && isRoom(params[0]) ? getBuffer(params[0], false) : null;
  addEvent(target ?? state.active ?? getBuffer(SERVER), params.join(" "), msg.tags.time ? lineTime(msg) : undefined);
}

function onLine(line) {
  const msg = parseLine(line);
  const batchId = msg.tags.batch;
  // BATCH itself is never collected: a nested batch opens and closes
  // in order, inside its parent.
  if (batchId && msg.command !== "BATCH" && state.batches.has(batchId)) {
    const batch = state.batches.get(batchId);
    if (batch.lines.length < MAX_BATCH_LINES) {
      batch.lines.push(msg);
      return;
    }
  }
  handle(msg);
}

/** Commands that mean nothing without a first parameter. */
const NEEDS_PARAM = new Set(["JOIN", "PART", "KICK", "NICK", "MODE", "TOPIC", "PRIVMSG", "NOTICE", "BATCH"]);

function handle(msg) {
  const p = msg.params;
  if (NEEDS_PARAM.has(msg.command) && !p[0]) return;
  if (msg.command === "KICK" && !p[1]) return;
  switch (msg.command) {
    case "PING":
      send(`PONG :${p[0] ?? ""}`);
      break;
    case "CAP":
      onCap(msg);
      break;
    case "AUTHENTICATE":
      if (p[0] === "+") saslPlain();
      break;
    case "903": // SASL success
      if (!state.registered) send("CAP END");
      break;
    case "902":
    case "904":
    case "905":
    case "906":
      failRegistration(`Login failed: ${p[p.length - 1]} (${msg.command}). Check the password, or leave it empty to chat without logging in.`);
      break;
    case "001":
      onWelcome(msg);
      break;
    case "005":
      onIsupport(msg);
      break;
    case "731": // MONITOR: these nicks went offline
      for (const target of (p[1] ?? "").split(",")) regainNick(target.split("!")[0]);
      break;
    case "730": // MONITOR: online; nothing to do until it goes
      break;
    case "433": // Nick in use
    case "432": { // Erroneous nick
      const taken = p[1] ?? state.wantedNick;
      const suggestion = otherNick(state.wantedNick, state.nickTries);
      if (!state.registered && state.everRegistered && msg.command === "433" && state.nickTries < MAX_NICK_TRIES) {
        // Reconnecting while our old connection still holds the nick.
        state.nickTries += 1;
        send(`NICK ${suggestion}`);
      } else if (!state.registered) {
        const why = msg.command === "433" ? "is taken" : "cannot be used";
        failRegistration(`The nick ${taken} ${why}. Try ${suggestion}?`, suggestion);
      } else {
        showNumeric(msg);
      }
      break;
    }
    case "BATCH": {
      const id = p[0] ?? "";
      if (id.startsWith("+")) {
        // Past the cap, a batch's lines are shown as they come.
        if (state.batches.size >= MAX_OPEN_BATCHES) break;
        state.batches.set(id.slice(1), { type: p[1] ?? "", params: p.slice(2), lines: [], parent: msg.tags.batch ?? "" });
      } else {
        const batch = state.batches.get(id.slice(1));
        state.batches.delete(id.slice(1));
        if (!batch) break;
        const parent = state.batches.get(batch.parent);
        if (batch.type === "chathistory") finishHistory(batch.params[0] ?? "", batch.lines);
        else if (parent && parent.lines.length + batch.lines.length <= MAX_BATCH_LINES) parent.lines.push(...batch.lines);
        else batch.lines.forEach(handle);
      }
      break;
    }
    case "PRIVMSG":
    case "NOTICE":
      showMessage(msg, true);
      break;
    case "JOIN":
      onJoin(msg);
      break;
    case "PART":
      onPart(msg);
      break;
    case "KICK":
      onKick(msg);
      break;
    case "QUIT":
      onQuit(msg);
      break;
    case "NICK":
      onNick(msg);
      break;
    case "MODE":
      onMode(msg);
      break;
    case "TOPIC": {
      const buffer = getBuffer(p[0], false);
      if (buffer) {
        onTopic(buffer, p[1] ?? "");
        addEvent(buffer, `${msg.nick} sets the topic: ${stripFormatting(p[1] ?? "")}`, lineTime(msg));
      }
      break;
    }
    case "332": {
      const buffer = getBuffer(p[1], false);
      if (buffer) onTopic(buffer, p[2] ?? "");
      break;
    }
    case "353": { // NAMES: "= #room :@alice +bob"
      const buffer = getBuffer(p[2], false);
      if (!buffer) break;
      if (buffer.namesDone) buffer.members = new Map();
      buffer.namesDone = false;
      for (const entry of (p[3] ?? "").split(" ").filter(Boolean)) {
        const [nick, modes] = splitPrefixes(entry);
        buffer.members.set(fold(nick), { nick, modes, away: false });
      }
      break;
    }
    case "366": {
      const buffer = getBuffer(p[1], false);
      if (buffer) buffer.namesDone = true;
      if (buffer === state.active) renderMembers();
      break;
    }
    case "AWAY":
      for (const buffer of state.buffers.values()) {
        const member = buffer.members.get(fold(msg.nick));
        if (member) member.away = p.length > 0;
      }
      renderMembers();
      break;
    case "321":
      state.listing = [];
      break;
    case "322":
      if (state.listing.length < 10000) state.listing.push({ name: p[1], count: Number(p[2]) || 0, topic: p[3] ?? "" });
      break;
    case "323":
      renderRoomList();
      // The next LIST starts afresh, even from a server that sends no 321.
      state.listing = [];
      break;
    case "FAIL":
      if (p[0] === "CHATHISTORY") historyFailed();
      addEvent(state.active ?? getBuffer(SERVER), `${p[0]}: ${p[p.length - 1]}`);
      break;
    case "ERROR":
      if (!state.everRegistered) failRegistration(`The server says: ${p[0] ?? ""}`);
      addEvent(getBuffer(SERVER), `Server closed the connection: ${p[0] ?? ""}`);
      break;
    case "324": case "329": case "333": case "002": case "003": case "004": case "375": case "376":
    case "265": case "266": case "251": case "252": case "253": case "254": case "255": case "396":
      // Details the page does not need to show in a room.
      addEvent(getBuffer(SERVER), msg.params.slice(1).join(" "));
      break;
    default:
      if (/^\d{3}$/.test(msg.command)) showNumeric(msg);
  }
}

// ---------------------------------------------------------------------------
// What the user types

/**
 * Bytes of text one PRIVMSG to `target` may carry: the server relays it
 * as ":nick!user@host PRIVMSG target :text", within 510 bytes.
 */
function textBudget(target, extra) {
  const encoder = new TextEncoder();
  const userhost = state.userhost ? encoder.encode(state.userhost).length : GUESS_USERHOST_BYTES;
  const prefix = encoder.encode(`:${state.nick}! PRIVMSG ${target} :`).length + userhost;
  return Math.max(1, MAX_LINE_BYTES - prefix - extra);
}

/**
 * Cuts text into pieces of at most `budget` bytes of UTF-8, at a space
 * when there is one, never inside a character; no piece is empty.
 */
function splitText(text, budget) {
  const encoder = new TextEncoder();
  const pieces = [];
  let rest = text;
  while (encoder.encode(rest).length > budget) {
    let cut = 0;
    let bytes = 0;
    for (const ch of rest) {
      const size = encoder.encode(ch).length;
      if (bytes + size > budget) break;
      bytes += size;
      cut += ch.length;
    }
    // A character wider than the budget: sent whole rather than never.
    if (cut === 0) cut = [...rest][0].length;
    // The space may be the last character that fits (cut - 1).
    const space = rest.lastIndexOf(" ", cut - 1);
    if (space > cut / 2) cut = space + 1;
    pieces.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  if (rest.length > 0) pieces.push(rest);
  return pieces;
}

/** Sends a message to a buffer; it is shown when the server echoes it. */
function say(target, text) {
  if (!target || target === SERVER) {
    addEvent(getBuffer(SERVER), "Open a room or conversation first, or type /join #room.");
    return;
  }
  const action = /^\x01ACTION (.*)\x01$/s.exec(text);
  const pieces = action
    ? splitText(action[1], textBudget(target, 9)).map((piece) => `\x01ACTION ${piece}\x01`)
    : splitText(text, textBudget(target, 0));
  for (const piece of pieces) {
    send(`PRIVMSG ${target} :${piece}`);
    if (!state.caps.has("echo-message")) {
      showMessage({ tags: {}, source: state.nick, nick: state.nick, command: "PRIVMSG", params: [target, piece] }, false);
    }
  }
}

function runCommand(input) {
  const active = state.active;
  const here = active && active.kind !== "server" ? active.name : "";
  const space = input.indexOf(" ");
  const command = (space < 0 ? input.slice(1) : input.slice(1, space)).toLowerCase();
  const rest = space < 0 ? "" : input.slice(space + 1).trim();
  const [first = "", ...others] = rest.split(" ");
  const tail = others.join(" ");
  switch (command) {
    case "join":
      if (first) joinRoom(isRoom(first) ? first : `#${first}`, others[0] ?? "");
      break;
    case "part":
    case "close":
    case "leave":
      if (isRoom(first)) send(`PART ${first}${tail ? ` :${tail}` : ""}`);
      else if (active?.kind === "room" && active.joined) send(`PART ${here}${rest ? ` :${rest}` : ""}`);
      else if (active) closeBuffer(active);
      break;
    case "msg":
      if (first && tail) {
        say(first, tail);
        if (!isRoom(first)) showBuffer(getBuffer(first));
      }
      break;
    case "query":
      if (first) {
        showBuffer(getBuffer(first));
        if (tail) say(first, tail);
      }
      break;
    case "me":
      say(here, `\x01ACTION ${rest}\x01`);
      break;
    case "nick":
      if (first) send(`NICK ${first}`);
      break;
    case "topic":
      if (isRoom(first)) send(tail ? `TOPIC ${first} :${tail}` : `TOPIC ${first}`);
      else if (here) send(rest ? `TOPIC ${here} :${rest}` : `TOPIC ${here}`);
      break;
    case "list":
      send("LIST");
      break;
    case "quote":
    case "raw":
      send(rest);
      break;
    default:
      // Anything else is an IRC command as typed: /whois bob, /away ...
      send(input.slice(1));
  }
}

function onInput(event) {
  event.preventDefault();
  const input = $("input");
  input.focus();
  const text = input.value;
  if (text.trim() === "") return;
  if (!connected()) {
    // Nothing typed is lost: the text stays in the input to send later.
    input.setAttribute("aria-invalid", "true");
    $("input-note").hidden = false;
    return;
  }
  input.value = "";
  if (text.startsWith("//")) say(state.active?.name, text.slice(1));
  else if (text.startsWith("/")) runCommand(text);
  else say(state.active?.name, text);
}

// ---------------------------------------------------------------------------
// Drawers (the room list and member list on narrow screens)

/** Narrow screens (style.css) show the side lists as drawers. */
const NARROW = window.matchMedia("(max-width: 800px)");
const DRAWERS = { rooms: "toggle-rooms", members: "toggle-members" };

/**
 * A closed drawer is off screen: inert, so Tab and screen readers skip
 * it. On a wide screen both lists are always there.
 */
function syncDrawers() {
  for (const [id, toggle] of Object.entries(DRAWERS)) {
    const open = $(id).classList.contains("open");
    $(id).inert = NARROW.matches && !open;
    $(toggle).setAttribute("aria-expanded", String(open));
  }
}

function closeDrawers() {
  const wasOpen = Object.keys(DRAWERS).find((id) => $(id).classList.contains("open"));
  $("rooms").classList.remove("open");
  $("members").classList.remove("open");
  $("backdrop").hidden = true;
  syncDrawers();
  // Focus goes back to the button that opened the drawer, if it was inside.
  if (wasOpen && $(wasOpen).contains(document.activeElement)) $(DRAWERS[wasOpen]).focus();
}

function toggleDrawer(id) {
  const drawer = $(id);
  const open = !drawer.classList.contains("open");
  closeDrawers();
  drawer.classList.toggle("open", open);
  $("backdrop").hidden = !open;
  syncDrawers();
  if (open) drawer.querySelector("button, input")?.focus({ preventScroll: true });
  // Member counts change: the list is fetched again each time it is opened.
  if (open && id === "rooms") send("LIST");
}

// ---------------------------------------------------------------------------
// Start

function onConnectSubmit(event) {
  event.preventDefault();
  const nick = $("connect-nick").value.trim();
  if (!/^[^\s,*?!@#:&][^\s,*?!@]*$/.test(nick)) {
    showConnectScreen("A nick has no spaces and does not start with # or :.");
    return;
  }
  let room = $("connect-room").value.trim();
  if (room && !room.startsWith("#")) room = `#${room}`;
  state.wantedNick = nick;
  state.password = $("connect-password").value;
  state.account = nick;
  state.pendingJoins = room ? [room] : [];
  setWantShow(room);
  state.stopped = false;
  $("connect-error").hidden = true;
  $("connect-button").disabled = true;
  connect();
}

function start() {
  $("connect-nick").value = localStorage.getItem(NICK_KEY) ?? "";
  $("connect-form").addEventListener("submit", onConnectSubmit);
  $("input-form").addEventListener("submit", onInput);
  // Tapping Send must not take the focus (and the phone's keyboard) away.
  for (const type of ["pointerdown", "mousedown"]) {
    $("send-button").addEventListener(type, (event) => event.preventDefault());
  }
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("join-input").value.trim();
    if (!name) return;
    $("join-input").value = "";
    joinRoom(isRoom(name) ? name : `#${name}`);
  });
  $("list-refresh").addEventListener("click", () => send("LIST"));
  $("toggle-rooms").addEventListener("click", () => toggleDrawer("rooms"));
  $("toggle-members").addEventListener("click", () => toggleDrawer("members"));
  $("backdrop").addEventListener("click", closeDrawers);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && document.querySelector(".drawer.open")) closeDrawers();
  });
  NARROW.addEventListener("change", syncDrawers);
  syncDrawers();
  // Back online after a network change, or back to the page: retry now,
  // not at the backoff's end; an open connection must prove it lives.
  const wake = () => {
    if (document.hidden) return;
    // Back to the page: what is in view has been seen.
    if (state.active && state.active.unread > 0) {
      state.active.unread = 0;
      state.active.highlights = 0;
      renderBufferList();
    }
    if (state.socket) pingNow();
    else if (state.everRegistered && !state.stopped) {
      state.backoffMs = 1000;
      connect();
    }
  };
  window.addEventListener("online", wake);
  document.addEventListener("visibilitychange", wake);
  setInterval(checkAlive, 5000);
}

start();
