// The peer of benches/ws.rs: a plain WebSocket fan-out server on the `ws` package.
// Agents connect with `/?agent=K`; the load generator connects with `/?publish=1` and
// sends one JSON message per alert, `{"agent": K, "id": …, "data": {…}}`, which is
// forwarded as it is to agent K's socket. No store, no log, no routing: a floor for
// the transport.
import { WebSocketServer } from 'ws';

const agents = new Map();
const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
server.on('listening', () => {
  console.log(`listening on 127.0.0.1:${server.address().port}`);
});
server.on('connection', (socket, request) => {
  const params = new URL(request.url, 'http://localhost').searchParams;
  if (params.get('publish')) {
    socket.on('message', (data) => {
      const target = agents.get(String(JSON.parse(data).agent));
      if (target) target.send(data, { binary: false });
    });
    return;
  }
  const agent = params.get('agent');
  agents.set(agent, socket);
  socket.send('{"type":"hello"}');
  socket.on('close', () => agents.delete(agent));
});
