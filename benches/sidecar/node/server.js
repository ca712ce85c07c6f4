// The reference signaling server, written from the seed's description the way a Node developer
// would: express + socket.io, rooms by a 6-digit code, the seed's events, TURN REST credentials.
// scripts/bench-sidecar runs it beside tern-sidecar. PORT and TURN_SECRET come from the
// environment; it prints "listening on PORT" once ready.
import express from 'express';
import { createServer } from 'node:http';
import { createHmac, randomInt, randomBytes } from 'node:crypto';
import { Server } from 'socket.io';

const secret = process.env.TURN_SECRET || 'bench-secret';
const turnUris = ['turn:127.0.0.1:3478?transport=udp', 'turn:127.0.0.1:3478?transport=tcp'];
const app = express();
app.get('/healthz', (_req, res) => res.json({ status: 'ok' }));
const server = createServer(app);
// PING_INTERVAL/PING_TIMEOUT (ms) match the sidecar's in the benchmark, whose clients only
// read when they expect a message.
const io = new Server(server, {
  cors: { origin: '*' },
  pingInterval: Number(process.env.PING_INTERVAL || 25000),
  pingTimeout: Number(process.env.PING_TIMEOUT || 20000),
});
const rooms = new Map(); // code -> Set of socket ids

const iceServers = () => {
  const username = `${Math.floor(Date.now() / 1000) + 3600}:${randomBytes(8).toString('hex')}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return [{ urls: ['stun:127.0.0.1:3478'] }, { urls: turnUris, username, credential }];
};
const rename = { CLIENT_OFFER_TO_SERVER: 'CLIENT_OFFER_TO_TV', TV_ANSWER_TO_SERVER: 'TV_ANSWER_TO_CLIENT' };

io.on('connection', (socket) => {
  socket.on('TV_INIT', () => {
    let code;
    do { code = String(randomInt(0, 1e6)).padStart(6, '0'); } while (rooms.has(code));
    rooms.set(code, new Set([socket.id]));
    socket.join(code);
    socket.data.room = code;
    socket.emit('TV_INIT_OK', code);
  });
  socket.on('JOIN_ROOM', (code) => {
    const members = rooms.get(String(code));
    if (!members || members.size >= 2) { socket.emit('ERROR', { code: 'room-unavailable' }); return; }
    members.add(socket.id);
    socket.join(String(code));
    socket.data.room = String(code);
    socket.emit('CONFIG_FEEDBACK', { config: { iceServers: iceServers() } });
    socket.to(String(code)).emit('CONFIG_FEEDBACK', { config: { iceServers: iceServers() } });
  });
  socket.onAny((event, ...args) => {
    if (event === 'TV_INIT' || event === 'JOIN_ROOM' || !socket.data.room) return;
    socket.broadcast.to(socket.data.room).emit(rename[event] || event, ...args);
  });
  socket.on('disconnect', () => {
    const code = socket.data.room;
    const members = code && rooms.get(code);
    if (!members) return;
    members.delete(socket.id);
    if (members.size === 0) rooms.delete(code);
    else socket.to(code).emit('PEER_LEFT', { id: socket.id });
  });
});

const port = Number(process.env.PORT || 0);
server.listen(port, '127.0.0.1', () => console.log(`listening on ${server.address().port}`));
