// The document benchmark's peer: a plain Node.js file server on loopback. POST
// /files/NAME streams the request body to DIR/NAME; GET /files/NAME streams it back.
// No authentication, type sniffing, hashing or bookkeeping: a floor for moving the bytes
// over HTTP to and from the disk, not an equal of ROI's document API.
// Usage: node server.mjs DIR   (prints "listening on http://HOST:PORT")
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node server.mjs DIR');
  process.exit(2);
}

const server = http.createServer(async (req, res) => {
  const name = (req.url || '').replace(/^\/files\//, '');
  if (!/^[0-9a-z_-]+$/.test(name)) {
    res.writeHead(404).end();
    return;
  }
  const file = path.join(dir, name);
  try {
    if (req.method === 'POST') {
      await pipeline(req, fs.createWriteStream(file));
      res.writeHead(201).end();
    } else if (req.method === 'GET') {
      const { size } = await fs.promises.stat(file);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
      await pipeline(fs.createReadStream(file), res);
    } else {
      res.writeHead(405).end();
    }
  } catch (e) {
    console.error(e);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  }
});

server.listen(0, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
