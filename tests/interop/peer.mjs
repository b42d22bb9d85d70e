// An ethereumjs devp2p peer, driven by the Rust interop tests (tests/tests/interop.rs and
// driver-tokio/tests/interop_cli.rs; the Rust side is tests/harness/interop.rs).
//
//   node peer.mjs [--rlpx] [--dpt] [--bootnode ENODE] [--refresh-ms N] [--max-seconds N]
//
// --rlpx runs an RLPx server (capability eth/68) and --dpt a discovery v4 node, both on
// 127.0.0.1 with ports the OS picks. It reports what it sees as one JSON object per line on
// stdout (the first is {"event":"listening",...}) and takes commands as JSON lines on stdin:
//
//   {"cmd":"dial","enode":"enode://..."}          RLPx-connect to a node
//   {"cmd":"ping","pubkey":"<128 hex>"}           send a devp2p Ping to a connected peer
//   {"cmd":"disconnect","pubkey":"...","reason":N} send Disconnect(N) to a connected peer
//   {"cmd":"table"}                               report the discovery table
//   {"cmd":"exit"}                                stop
//
// It exits when stdin closes (so it never outlives the test that started it), and after
// --max-seconds (default 60) whatever happens. Ids are ethereumjs's: the 64-byte public key in
// hex ("pubkey"); the Rust side derives the Keccak-256 node id from it.
//
// To see what is sent and received, it wraps four ethereumjs internals (Peer._handleMessage,
// Peer._sendMessage, Server._handler, Server._send); the protocol code itself is untouched.

import * as readline from 'node:readline'

import { Common, Mainnet } from '@ethereumjs/common'
import { DPT, ETH, Peer, RLPx, decode, genPrivateKey, pk2id } from '@ethereumjs/devp2p'

const BASE_MESSAGES = { 0: 'HELLO', 1: 'DISCONNECT', 2: 'PING', 3: 'PONG' }

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`)
}

function hex(bytes) {
  return Buffer.from(bytes).toString('hex')
}

function unhex(s) {
  return Uint8Array.from(Buffer.from(s, 'hex'))
}

function fail(message) {
  emit({ event: 'fatal', error: message })
  process.exit(2)
}

function parseArgs(argv) {
  const opts = { rlpx: false, dpt: false, bootnode: null, refreshMs: 60000, maxSeconds: 60 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      if (i + 1 >= argv.length) fail(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--rlpx') opts.rlpx = true
    else if (a === '--dpt') opts.dpt = true
    else if (a === '--bootnode') opts.bootnode = parseEnode(value())
    else if (a === '--refresh-ms') opts.refreshMs = Number(value())
    else if (a === '--max-seconds') opts.maxSeconds = Number(value())
    else fail(`unknown argument ${a}`)
  }
  if (!opts.rlpx && !opts.dpt) fail('nothing to run: give --rlpx, --dpt or both')
  if (opts.bootnode !== null && !opts.dpt) fail('--bootnode needs --dpt')
  if (!(opts.refreshMs > 0) || !(opts.maxSeconds > 0)) fail('bad --refresh-ms or --max-seconds')
  return opts
}

function parseEnode(s) {
  const m = /^enode:\/\/([0-9a-f]{128})@([0-9.]+):(\d+)(?:\?discport=(\d+))?$/.exec(s)
  if (m === null) fail(`not an IPv4 enode URL: ${s}`)
  const tcpPort = Number(m[3])
  return {
    id: unhex(m[1]),
    address: m[2],
    tcpPort,
    udpPort: m[4] === undefined ? tcpPort : Number(m[4]),
  }
}

/// Logs the devp2p base-protocol messages a peer receives and sends (after decompression on
/// receipt; as put on the wire, before encryption, when sending).
function tracePeers() {
  const handle = Peer.prototype._handleMessage
  Peer.prototype._handleMessage = function (code, payload) {
    if (code in BASE_MESSAGES) {
      const e = { event: 'recv', msg: BASE_MESSAGES[code] }
      const id = code === 0 ? payload[4] : this._remoteId
      if (id instanceof Uint8Array) e.pubkey = hex(id)
      if (code === 1) {
        // What ethereumjs makes of it: a bare integer or a list holding one.
        const r = payload instanceof Uint8Array ? payload : (payload[0] ?? new Uint8Array())
        e.reason = r.length === 0 ? 0 : r[r.length - 1]
      }
      emit(e)
    }
    return handle.call(this, code, payload)
  }
  const send = Peer.prototype._sendMessage
  Peer.prototype._sendMessage = function (code, data) {
    if (code in BASE_MESSAGES && code !== 0) {
      const e = { event: 'sent', msg: BASE_MESSAGES[code], payload: hex(data) }
      if (this._remoteId instanceof Uint8Array) e.pubkey = hex(this._remoteId)
      emit(e)
    }
    return send.call(this, code, data)
  }
}

function findPeer(rlpx, pubkey) {
  return rlpx.getPeers().find((p) => hex(p.getId()) === pubkey) ?? null
}

async function startRlpx(key, common) {
  const rlpx = new RLPx(key, { capabilities: [ETH.eth68], common, maxPeers: 25 })
  rlpx.events.on('peer:added', (peer) => {
    const h = peer.getHelloMessage()
    emit({
      event: 'peer_added',
      pubkey: hex(peer.getId()),
      client: h.clientId,
      version: h.protocolVersion,
      caps: h.capabilities.map((c) => `${c.name}/${c.version}`),
      listen_port: h.port,
      // Whether the peer's auth (it dialled) or ack (we dialled) came in the EIP-8 format.
      eip8_auth: peer._eciesSession._gotEIP8Auth === true,
      eip8_ack: peer._eciesSession._gotEIP8Ack === true,
    })
  })
  rlpx.events.on('peer:removed', (peer, reason, disconnectWe) => {
    emit({
      event: 'peer_removed',
      pubkey: hex(peer.getId()),
      reason: reason ?? null,
      by_us: disconnectWe === true,
    })
  })
  rlpx.events.on('peer:error', (peer, err) => {
    const id = peer.getId()
    emit({ event: 'peer_error', pubkey: id ? hex(id) : null, error: String(err) })
  })
  rlpx.events.on('error', (err) => emit({ event: 'rlpx_error', error: String(err) }))
  await new Promise((resolve, reject) => {
    rlpx.events.once('listening', resolve)
    rlpx._server.once('error', reject)
    rlpx.listen(0, '127.0.0.1')
  })
  const port = rlpx._server.address().port
  // The listen port ethereumjs puts in its Hello (a real client passes its configured port).
  rlpx._listenPort = port
  return { rlpx, port }
}

async function startDpt(key, common, refreshMs) {
  const dpt = new DPT(key, {
    common,
    refreshInterval: refreshMs,
    endpoint: { address: '127.0.0.1', udpPort: null, tcpPort: null },
  })
  const server = dpt._server
  const handler = server._handler
  server._handler = function (msg, rinfo) {
    try {
      const info = decode(msg, common)
      const e = {
        event: 'udp_in',
        type: info.typename,
        pubkey: hex(pk2id(info.publicKey)),
        from: `${rinfo.address}:${rinfo.port}`,
      }
      if (info.typename === 'ping') {
        e.advertised = `${info.data.from.address}:${info.data.from.udpPort}`
      }
      if (info.typename === 'neighbours') e.peers = info.data.peers.map((p) => hex(p.id))
      emit(e)
    } catch (err) {
      emit({ event: 'udp_in_undecodable', from: `${rinfo.address}:${rinfo.port}`, error: String(err) })
    }
    return handler.call(this, msg, rinfo)
  }
  const send = server._send
  server._send = function (peer, typename, data) {
    const e = { event: 'udp_out', type: typename, to: `${peer.address}:${peer.udpPort}` }
    if (peer.id instanceof Uint8Array) e.pubkey = hex(peer.id)
    emit(e)
    return send.call(this, peer, typename, data)
  }
  dpt.events.on('peer:added', (p) =>
    emit({ event: 'table_added', pubkey: hex(p.id), address: p.address, udp: p.udpPort, tcp: p.tcpPort ?? null }),
  )
  dpt.events.on('peer:removed', (p) => emit({ event: 'table_removed', pubkey: hex(p.id) }))
  dpt.events.on('error', (err) => emit({ event: 'dpt_error', error: String(err) }))
  await new Promise((resolve, reject) => {
    dpt.events.once('listening', resolve)
    server._socket.once('error', reject)
    dpt.bind(0, '127.0.0.1')
  })
  return { dpt, port: server._socket.address().port }
}

function handleCommand(line, ctx) {
  let c
  try {
    c = JSON.parse(line)
  } catch (err) {
    emit({ event: 'bad_command', line, error: String(err) })
    return
  }
  const needPeer = () => {
    const peer = ctx.rlpx === null ? null : findPeer(ctx.rlpx, c.pubkey)
    if (peer === null) emit({ event: 'bad_command', line, error: 'no such peer' })
    return peer
  }
  switch (c.cmd) {
    case 'dial': {
      if (ctx.rlpx === null) return emit({ event: 'bad_command', line, error: 'no --rlpx' })
      const { id, address, tcpPort } = parseEnode(c.enode)
      ctx.rlpx
        .connect({ id, address, tcpPort })
        .catch((err) => emit({ event: 'dial_failed', error: String(err) }))
      return
    }
    case 'ping': {
      const peer = needPeer()
      if (peer !== null) peer._sendPing()
      return
    }
    case 'disconnect': {
      const peer = needPeer()
      if (peer !== null) peer.disconnect(c.reason)
      return
    }
    case 'table':
      if (ctx.dpt === null) return emit({ event: 'bad_command', line, error: 'no --dpt' })
      return emit({ event: 'table', pubkeys: ctx.dpt.getPeers().map((p) => hex(p.id)) })
    case 'exit':
      return process.exit(0)
    default:
      emit({ event: 'bad_command', line, error: 'unknown command' })
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  setTimeout(() => {
    emit({ event: 'deadline', seconds: opts.maxSeconds })
    process.exit(3)
  }, opts.maxSeconds * 1000)

  const key = genPrivateKey()
  const common = new Common({ chain: Mainnet })
  tracePeers()
  const ctx = { rlpx: null, dpt: null }
  let tcp = null
  let udp = null
  if (opts.rlpx) {
    const r = await startRlpx(key, common)
    ctx.rlpx = r.rlpx
    tcp = r.port
  }
  if (opts.dpt) {
    const d = await startDpt(key, common, opts.refreshMs)
    ctx.dpt = d.dpt
    udp = d.port
    // What our Pings advertise as `from` (ethereumjs's default is 0.0.0.0 with no ports).
    ctx.dpt._server._endpoint = { address: '127.0.0.1', udpPort: udp, tcpPort: tcp }
  }
  // Both derive the 64-byte public key from the secret key as `id`.
  const pubkey = hex((ctx.rlpx ?? ctx.dpt).id)
  const port = tcp ?? udp
  const enode = `enode://${pubkey}@127.0.0.1:${port}${udp !== null && udp !== port ? `?discport=${udp}` : ''}`
  emit({
    event: 'listening',
    pubkey,
    tcp,
    udp,
    enode,
    client: ctx.rlpx === null ? null : Buffer.from(ctx.rlpx.clientId).toString('utf8'),
  })

  const rl = readline.createInterface({ input: process.stdin })
  rl.on('line', (line) => handleCommand(line, ctx))
  rl.on('close', () => process.exit(0))

  if (opts.bootnode !== null) {
    await ctx.dpt.bootstrap(opts.bootnode)
    emit({ event: 'bootstrap_done' })
  }
}

main().catch((err) => fail(String(err?.stack ?? err)))
