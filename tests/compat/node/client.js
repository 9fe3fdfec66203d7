'use strict';
// Calls POST /faceidcard/check with Alibaba's own npm client, `aliyun-api-gateway`
// (pinned in package.json): its `Client` signs with the AppKey/AppSecret exactly as the
// package does (lower-case x-ca-* headers including x-ca-stage and a UUID x-ca-nonce,
// HmacSHA256, Content-MD5 on non-form bodies); its `SimpleClient` sends the AppCode.
//
//   node client.js URL APP_KEY APP_SECRET MODE
//
// MODE: json | form (Client, signed) | appcode-json | appcode-form (SimpleClient; APP_KEY
// is then the AppCode and APP_SECRET is ignored). The body's fields come from the
// environment: RZ_NAME, RZ_ID_CARD, RZ_IMAGE (base64).
//
// Prints one JSON line: {"client", "responses": [{"status", "headers", "body"}]}, headers
// with lower-case names, body the response text. The package throws on a non-2xx answer
// without reading its body, and returns only the body of a 2xx: the response object is
// captured by wrapping `httpx.request`, which the package calls, so that every answer is
// reported whole. The signing is the package's own; nothing here touches it.

const httpx = require('httpx');
const { Client, SimpleClient, CONTENT_TYPE_FORM } = require('aliyun-api-gateway');

const [url, key, secret, mode] = process.argv.slice(2);
if (!url || !key || secret === undefined || !mode) {
  console.error('usage: node client.js URL APP_KEY APP_SECRET json|form|appcode-json|appcode-form');
  process.exit(2);
}

let last = null;
const request = httpx.request;
httpx.request = async function (...args) {
  last = await request.apply(this, args);
  return last;
};

function fields() {
  return {
    name: process.env.RZ_NAME || '',
    idCard: process.env.RZ_ID_CARD || '',
    image: process.env.RZ_IMAGE || '',
  };
}

async function call() {
  const data = fields();
  const target = `${url.replace(/\/$/, '')}/faceidcard/check`;
  switch (mode) {
    case 'json':
      // No content-type given: the package defaults to application/json.
      return new Client(key, secret).post(target, { data, headers: { accept: 'application/json' } });
    case 'form':
      return new Client(key, secret).post(target, {
        data,
        headers: { accept: 'application/json', 'content-type': CONTENT_TYPE_FORM },
      });
    case 'appcode-json':
      return new SimpleClient(key).post(target, { data });
    case 'appcode-form':
      return new SimpleClient(key).post(target, {
        data,
        headers: { 'content-type': CONTENT_TYPE_FORM },
      });
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

async function main() {
  let body;
  try {
    const result = await call();
    body = typeof result === 'string' ? result : JSON.stringify(result);
  } catch (err) {
    if (!last || err.code === undefined) {
      throw err;
    }
    // Refused: the package did not read the body; read it here.
    body = await httpx.read(last, 'utf8');
  }
  const out = {
    client: 'npm aliyun-api-gateway@' + require('aliyun-api-gateway/package.json').version,
    responses: [{ status: last.statusCode, headers: last.headers, body }],
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
