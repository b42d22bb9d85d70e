// A @chainsafe/discv5 node (the discv5 of Lodestar and Ultralight), driven by the Rust discv5
// interop tests (tests/tests/discv5_interop.rs; the Rust side is tests/harness/discv5/chainsafe.rs).
//
//   node discv5.mjs [--key HEX] [--port N] [--seq N] [--bootnode ENR]... [--max-seconds N]
//
// It listens on 127.0.0.1 (port N, or one the OS picks), prints {"event":"listening",...}
// with its record, then reports as one JSON object per line and takes commands as JSON lines
// on stdin, each answered by one line carrying the command's "tag":
//
//   {"cmd":"enr"}                                   its record
//   {"cmd":"ping","enr":"enr:..."}                  sendPing: {"event":"pong","enr_seq","to_ip","to_port"}
//   {"cmd":"requestenr","enr":"enr:..."}            sendFindNode [0]: {"event":"enr_response",...}
//   {"cmd":"findnode","enr":"enr:...","distances":[...]}   sendFindNode: {"event":"nodes","nodes":[...]}
//   {"cmd":"talk","enr":"enr:...","protocol":"p","hex":"..."}  sendTalkReq: {"event":"talk_response","hex"}
//   {"cmd":"register_talk","protocol":"p","transform":"echo|reverse|prefix|fixed","hex":"..."}
//   {"cmd":"lookup","target":"<node id hex>"}       findNode (findRandomNode without a target)
//   {"cmd":"table"}                                 the routing table: records and status
//   {"cmd":"add_node","enr":"enr:..."}              addEnr
//   {"cmd":"set_enr_field","key":"k","hex":"..."}   SignableENR.set: a new record, seq + 1
//   {"cmd":"stop"}                                  stop the service and exit
//
// The library has no registry of TALK protocols: every TALKREQ reaches the application
// (`talkReqReceived`), and one the application does not answer is never answered. This
// script answers the registered protocols by their transform and any other one with an empty
// TALKRESP, as the spec asks; each TALKREQ is reported as {"event":"talk_request",...}.
//
// It exits when stdin closes (so it never outlives the test that started it), and after
// --max-seconds (default 90) whatever happens.

import * as readline from 'node:readline'

import { Discv5 } from '@chainsafe/discv5'
import { ENR, SignableENR } from '@chainsafe/enr'
import { generateKeyPair, privateKeyFromRaw } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'

function emit(obj) {
  process.stdout.write(
    `${JSON.stringify(obj, (_, v) => (typeof v === 'bigint' ? Number(v) : v))}\n`,
  )
}

function hex(bytes) {
  return Buffer.from(bytes).toString('hex')
}

function unhex(s) {
  return Uint8Array.from(Buffer.from(s ?? '', 'hex'))
}

function fail(message) {
  emit({ event: 'fatal', error: message })
  process.exit(2)
}

function parseArgs(argv) {
  const opts = { key: null, port: 0, seq: 1, bootnodes: [], maxSeconds: 90 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      if (i + 1 >= argv.length) fail(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--key') opts.key = value()
    else if (a === '--port') opts.port = Number(value())
    else if (a === '--seq') opts.seq = Number(value())
    else if (a === '--bootnode') opts.bootnodes.push(value())
    else if (a === '--max-seconds') opts.maxSeconds = Number(value())
    else fail(`unknown argument ${a}`)
  }
  if (!(opts.maxSeconds > 0) || !(opts.seq >= 1)) fail('bad --max-seconds or --seq')
  return opts
}

// A record as the other harnesses print one: id, seq, ip, udp, the enr: text and its RLP.
function nodeJSON(enr, from) {
  const j = {
    id: enr.nodeId,
    seq: Number(enr.seq),
    ip: enr.ip ?? null,
    udp: enr.udp ?? null,
    enr: enr.encodeTxt(),
    rlp: hex(enr.encode()),
  }
  if (from !== undefined) j.distance = logDistance(from, enr.nodeId)
  return j
}

function logDistance(a, b) {
  const x = BigInt(`0x${a}`) ^ BigInt(`0x${b}`)
  return x === 0n ? 0 : x.toString(2).length
}

function ipText(ip) {
  if (ip.type === 4) return Array.from(ip.octets).join('.')
  return Buffer.from(ip.octets).toString('hex').match(/.{4}/g).join(':')
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  setTimeout(() => {
    emit({ event: 'lifetime_exceeded', seconds: opts.maxSeconds })
    process.exit(3)
  }, opts.maxSeconds * 1000).unref()

  const privateKey =
    opts.key === null ? await generateKeyPair('secp256k1') : privateKeyFromRaw(unhex(opts.key))
  const local = SignableENR.createFromPrivateKey(privateKey)
  local.ip = '127.0.0.1'
  if (opts.port !== 0) local.udp = opts.port
  const discv5 = Discv5.create({
    enr: local,
    privateKey,
    bindAddrs: { ip4: multiaddr(`/ip4/127.0.0.1/udp/${opts.port}`) },
    // Keep the record as set here: on loopback every vote would name the same endpoint anyway.
    config: { enrUpdate: false },
  })
  await discv5.start()
  // Port 0: the record names the port the socket got.
  const port = discv5.sessionService.transport.ip4.socket.address().port
  if (discv5.enr.udp !== port) discv5.enr.udp = port
  // The record's seq: the given one (a restart with the same key needs a higher one).
  if (discv5.enr.seq < BigInt(opts.seq)) {
    discv5.enr.seq = BigInt(opts.seq) - 1n
    discv5.enr.set('ip', discv5.enr.kvs.get('ip'))
  }
  for (const b of opts.bootnodes) discv5.addEnr(b)

  const talk = new Map() // protocol (text) -> {transform, hex}
  discv5.on('talkReqReceived', (nodeAddr, _enr, message) => {
    const protocol = Buffer.from(message.protocol).toString()
    emit({
      event: 'talk_request',
      peer: nodeAddr.nodeId,
      from: nodeAddr.socketAddr.toString(),
      protocol,
      hex: hex(message.request),
      registered: talk.has(protocol),
    })
    const spec = talk.get(protocol)
    let answer = new Uint8Array()
    if (spec !== undefined) {
      const fixed = unhex(spec.hex)
      if (spec.transform === 'echo') answer = message.request
      else if (spec.transform === 'reverse') answer = Uint8Array.from(message.request).reverse()
      else if (spec.transform === 'prefix') answer = Buffer.concat([fixed, message.request])
      else answer = fixed
    }
    discv5.sendTalkResp(nodeAddr, message.id, answer).catch((e) => {
      emit({ event: 'talk_response_failed', error: String(e) })
    })
  })
  discv5.on('enrAdded', (enr) => emit({ event: 'enr_added', ...nodeJSON(enr) }))

  const listening = nodeJSON(discv5.enr.toENR())
  listening.event = 'listening'
  emit(listening)

  const reply = (cmd, ev) => emit(cmd.tag === undefined ? ev : { ...ev, tag: cmd.tag })
  const replyErr = (cmd, e) => reply(cmd, { event: 'error', cmd: cmd.cmd, error: String(e?.message ?? e) })
  const remote = (cmd) => ENR.decodeTxt(cmd.enr)

  const handle = async (cmd) => {
    switch (cmd.cmd) {
      case 'enr':
        return reply(cmd, { event: 'enr', ...nodeJSON(discv5.enr.toENR()) })
      case 'ping': {
        const to = remote(cmd)
        const pong = await discv5.sendPing(to)
        return reply(cmd, {
          event: 'pong',
          peer: to.nodeId,
          enr_seq: Number(pong.enrSeq),
          to_ip: ipText(pong.addr.ip),
          to_port: pong.addr.port,
        })
      }
      case 'requestenr': {
        const to = remote(cmd)
        const found = await discv5.sendFindNode(to, [0])
        if (found.length !== 1) throw new Error(`${found.length} records for distance 0`)
        return reply(cmd, { event: 'enr_response', peer: to.nodeId, ...nodeJSON(found[0]) })
      }
      case 'findnode': {
        const to = remote(cmd)
        const found = await discv5.sendFindNode(to, cmd.distances)
        return reply(cmd, {
          event: 'nodes',
          peer: to.nodeId,
          nodes: found.map((e) => nodeJSON(e, to.nodeId)),
        })
      }
      case 'talk': {
        const to = remote(cmd)
        const resp = await discv5.sendTalkReq(to, unhex(cmd.hex), cmd.protocol)
        return reply(cmd, { event: 'talk_response', peer: to.nodeId, hex: hex(resp) })
      }
      case 'register_talk':
        talk.set(cmd.protocol, { transform: cmd.transform, hex: cmd.hex })
        return reply(cmd, { event: 'registered', protocol: cmd.protocol })
      case 'lookup': {
        const started = Date.now()
        const target = cmd.target ?? null
        const found =
          target === null ? await discv5.findRandomNode() : await discv5.findNode(target)
        return reply(cmd, {
          event: 'lookup',
          target,
          nodes: found.map((e) => nodeJSON(e, target ?? undefined)),
          ms: Date.now() - started,
        })
      }
      case 'table':
        return reply(cmd, {
          event: 'table',
          nodes: discv5.kbuckets.rawValues().map((entry) => ({
            ...nodeJSON(entry.value),
            connected: entry.status === 0,
          })),
        })
      case 'add_node':
        discv5.addEnr(cmd.enr)
        return reply(cmd, { event: 'added', peer: remote(cmd).nodeId })
      case 'set_enr_field':
        discv5.enr.set(cmd.key, unhex(cmd.hex))
        return reply(cmd, { event: 'enr', ...nodeJSON(discv5.enr.toENR()) })
      case 'stop':
        await discv5.stop()
        reply(cmd, { event: 'stopped' })
        return process.exit(0)
      default:
        throw new Error(`unknown command ${cmd.cmd}`)
    }
  }

  const rl = readline.createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    if (line.trim() === '') return
    let cmd
    try {
      cmd = JSON.parse(line)
    } catch (e) {
      return emit({ event: 'error', error: `bad command ${line}: ${e}` })
    }
    handle(cmd).catch((e) => replyErr(cmd, e))
  })
  rl.on('close', () => process.exit(0))
}

main().catch((e) => fail(String(e?.stack ?? e)))
