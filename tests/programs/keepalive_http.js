// A node http server for tests/test_netprogs.py: answers every request
// with how many requests its connection carried and the client's port, so
// that a client can tell its next answer came on the same connection, from
// the same server state. argv: port; `ready` is created once it listens.
const http = require('http');
const fs = require('fs');
const port = Number(process.argv[2]);
let total = 0;
const server = http.createServer((req, res) => {
  const s = req.socket;
  s.requests = (s.requests || 0) + 1;
  total++;
  const body = `request ${s.requests} on port ${s.remotePort}, ${total} in all\n`;
  res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body)});
  res.end(body);
});
// the checkpoint may last longer than node's 5 s keep-alive default
server.keepAliveTimeout = 120000;
server.headersTimeout = 130000;
server.listen(port, '127.0.0.1', () => fs.writeFileSync('ready', ''));
