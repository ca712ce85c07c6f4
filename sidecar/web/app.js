// Tern screen-cast demo: a TV shows a code, a sender types it and casts its screen (or camera).
// Speaks the sidecar's JSON protocol at /ws (docs/SIGNALING.md) and uses only the ICE servers
// the sidecar hands out. window.ternDemo exposes state for tests.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const mode = params.get('mode');
  if (params.get('relay') === '0') $('relayOnly').checked = false;

  const demo = { mode, code: null, iceServers: null, pc: null, source: null, signaling: 'idle', errors: [] };
  window.ternDemo = demo;

  const setText = (id, text, cls) => { const el = $(id); el.textContent = text; if (cls !== undefined) el.className = cls; };
  const fail = (msg) => { demo.errors.push(msg); setText('error', msg); console.error(msg); };
  const setSignaling = (s) => { demo.signaling = s; setText('sigState', s); };

  if (mode !== 'tv' && mode !== 'send') {
    // Carry the relay-only choice into the mode links.
    const syncLinks = () => ['goTv', 'goSend'].forEach((id) => {
      const u = new URL($(id).href);
      if ($('relayOnly').checked) u.searchParams.delete('relay'); else u.searchParams.set('relay', '0');
      $(id).href = u.toString();
    });
    $('relayOnly').onchange = syncLinks;
    syncLinks();
    return;
  }
  $('choose').hidden = true;
  $(mode).hidden = false;

  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  const send = (msg) => ws.send(JSON.stringify(msg));
  const signal = (data) => send({ type: 'signal', data });
  let credentialsWaiters = [];
  const credentials = () => demo.iceServers ? Promise.resolve(demo.iceServers)
    : new Promise((resolve) => credentialsWaiters.push(resolve));
  ws.onopen = () => { setSignaling('connected'); if (mode === 'tv') send({ type: 'create' }); };
  ws.onclose = () => setSignaling('closed');
  ws.onerror = () => fail('signaling connection failed');
  // Browsers cannot send WebSocket pings; an application ping keeps idle proxies from closing.
  setInterval(() => { if (ws.readyState === 1) send({ type: 'ping' }); }, 20000);

  let pendingCandidates = [];
  const newPeerConnection = (iceServers) => {
    const pc = new RTCPeerConnection({
      iceServers,
      iceTransportPolicy: $('relayOnly').checked ? 'relay' : 'all',
    });
    demo.pc = pc;
    pc.onicecandidate = (e) => { if (e.candidate) signal({ type: 'candidate', candidate: e.candidate.toJSON() }); };
    pc.onconnectionstatechange = () => { setText('pcState', pc.connectionState); updatePath(); };
    return pc;
  };
  const addCandidate = async (c) => {
    if (!demo.pc || !demo.pc.remoteDescription) { pendingCandidates.push(c); return; }
    try { await demo.pc.addIceCandidate(c); } catch (e) { fail(`bad candidate: ${e}`); }
  };
  const flushCandidates = async () => { const q = pendingCandidates; pendingCandidates = []; for (const c of q) await addCandidate(c); };

  // Reads the selected candidate pair from getStats(): is the path relayed through TURN?
  demo.pathInfo = async () => {
    if (!demo.pc) return null;
    const stats = await demo.pc.getStats();
    let pair = null;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
    if (!pair) stats.forEach((s) => { if (s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated) pair = s; });
    if (!pair) return null;
    const local = stats.get(pair.localCandidateId) || {};
    const remote = stats.get(pair.remoteCandidateId) || {};
    return {
      localType: local.candidateType, remoteType: remote.candidateType,
      relayed: local.candidateType === 'relay' || remote.candidateType === 'relay',
      localAddress: `${local.address || local.ip}:${local.port}`, protocol: local.protocol,
    };
  };
  const updatePath = async () => {
    const p = await demo.pathInfo();
    if (p) setText('path', p.relayed ? `relayed via TURN (${p.protocol}, local ${p.localType}, remote ${p.remoteType})`
      : `direct (local ${p.localType}, remote ${p.remoteType})`, p.relayed ? 'relayed' : 'direct');
  };
  setInterval(updatePath, 1000);

  const startSender = async () => {
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      demo.source = 'screen';
    } catch (e) {
      stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
      demo.source = `camera (screen capture unavailable: ${e.name})`;
    }
    setText('source', demo.source);
    $('local').srcObject = stream;
    const pc = newPeerConnection(await credentials());
    stream.getTracks().forEach((t) => pc.addTrack(t, stream));
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    signal({ type: 'offer', sdp: offer.sdp });
  };

  ws.onmessage = async (ev) => {
    const msg = JSON.parse(ev.data);
    switch (msg.type) {
      case 'created': demo.code = msg.code; setText('code', msg.code); setSignaling('waiting for a sender'); break;
      case 'joined': setSignaling('paired'); break;
      case 'peer-joined': setSignaling('paired'); break;
      case 'peer-left': setSignaling('peer left'); setText('pcState', 'peer left'); break;
      case 'credentials':
        demo.iceServers = msg.iceServers;
        credentialsWaiters.forEach((r) => r(msg.iceServers)); credentialsWaiters = [];
        break;
      case 'signal': {
        const d = msg.data || {};
        if (d.type === 'offer' && mode === 'tv') {
          const pc = newPeerConnection(await credentials());
          pc.ontrack = (e) => { $('remote').srcObject = e.streams[0] || new MediaStream([e.track]); };
          await pc.setRemoteDescription({ type: 'offer', sdp: d.sdp });
          await flushCandidates();
          const answer = await pc.createAnswer();
          await pc.setLocalDescription(answer);
          signal({ type: 'answer', sdp: answer.sdp });
        } else if (d.type === 'answer' && demo.pc) {
          await demo.pc.setRemoteDescription({ type: 'answer', sdp: d.sdp });
          await flushCandidates();
        } else if (d.type === 'candidate') {
          await addCandidate(d.candidate);
        }
        break;
      }
      case 'error': fail(`${msg.code}: ${msg.message}`); break;
      default: break;
    }
  };

  if (mode === 'send') {
    if (params.get('code')) $('codeInput').value = params.get('code');
    $('joinForm').onsubmit = (e) => {
      e.preventDefault();
      send({ type: 'join', code: $('codeInput').value.trim() });
      // getDisplayMedia needs this click's user activation: start right away, it waits for credentials.
      startSender().catch((err) => fail(`cannot start casting: ${err}`));
    };
  }
})();
