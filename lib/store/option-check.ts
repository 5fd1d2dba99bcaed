/**
 * Register-time check of the store options: the `redis` object (its own keys, and those of
 * `socket`, `cluster`, `cluster.rootNodes[]`, `cluster.defaults`) and the `store` object.
 *
 * Protects against a store that is not the one the operator meant, chosen in silence: node-redis
 * ignores keys it does not know, so `redis: { host, port }` (an ioredis habit) or `pasword`
 * would connect to localhost:6379 without a password — on a machine with another Redis there,
 * into that one. Every key is refused by name (FST_SESSION_STORE_OPTION) unless node-redis or
 * the plugin reads it, with a hint; keys the plugin sets itself are refused too, since a value
 * given for them would be overridden without a word. The value of a key is never repeated (it
 * may be a password or a URL with one).
 */
import type { SessionStore } from './contract.ts'
import { sessionError } from '../errors.ts'
import { closest, isPlainObject } from '../option-checks.ts'
import type { RedisPluginSetOption } from '../public-types.ts'

const CODE = 'FST_SESSION_STORE_OPTION'

function fail (detail: string): never {
  throw sessionError(CODE, detail)
}

const TO_URL = "use url: 'redis://host:port', 'rediss://…' for TLS, or socket: { host, port }"

/** What a wrong name at the top of `redis` (or of a cluster node) most likely meant. */
const CLIENT_HINTS: Readonly<Record<string, string>> = {
  host: TO_URL,
  hostname: TO_URL,
  port: TO_URL,
  tls: 'use a rediss:// url, or socket: { tls: true, … }',
  path: 'a Unix socket is socket: { path }',
  db: "use 'database'",
  pass: "use 'password'",
  auth: "use 'password' (and 'username')",
  user: "use 'username'",
  prefix: "use the plugin's top-level 'keyPrefix'",
  ttl: "use the plugin's top-level 'idleTimeout' (milliseconds)",
  client: 'pass the client itself: redis: client',
  connectTimeout: "use socket.connectTimeout for one connection attempt, or the plugin's top-level 'connectTimeout'",
  reconnectStrategy: "use 'socket.reconnectStrategy'",
  retryStrategy: "use 'socket.reconnectStrategy'",
  keepAlive: "use 'socket.keepAlive'",
  family: "use 'socket.family'",
  enableOfflineQueue: 'the plugin always turns the offline queue off',
  maxRetriesPerRequest: "store calls are bounded by the plugin's 'storeTimeout'",
  lazyConnect: 'the plugin connects at register',
  rootNodes: 'a Redis Cluster is redis: { cluster: { rootNodes: [...] } }',
  nodes: 'a Redis Cluster is redis: { cluster: { rootNodes: [...] } }',
  sentinels: 'for Sentinel, make a client with createSentinel() and pass it as redis',
  sentinelRootNodes: 'for Sentinel, make a client with createSentinel() and pass it as redis',
}

/** Keys of node-redis's `createClient` the plugin sets itself, and why. */
export const PLUGIN_SET = {
  RESP: 'the plugin always speaks RESP3, which client-side caching needs',
  clientSideCache: 'the plugin brings its own client-side cache',
  keyPrefix: "use the plugin's top-level 'keyPrefix'",
  disableOfflineQueue:
    'the plugin always turns the offline queue off, so that a write never lands after its request failed',
  commandOptions: "the plugin bounds each store call by 'storeTimeout' and reads replies in its own types",
  maintNotifications: 'the plugin turns maintenance notifications off',
  maintEndpointType: 'the plugin turns maintenance notifications off',
  maintRelaxedCommandTimeout: 'the plugin turns maintenance notifications off',
  maintRelaxedSocketTimeout: 'the plugin turns maintenance notifications off',
  himportRegistry: 'node-redis sets it itself',
} as const satisfies Record<RedisPluginSetOption, string>
const OWN_CHOICE = ' (to choose it yourself, make the client and pass it as redis)'

/** `createClient` options the plugin passes on, and the plugin's own keys inside `redis`. */
export const CLIENT_KEYS = [
  'url', 'socket', 'username', 'password', 'credentialsProvider', 'name', 'database', 'commandsQueueMaxLength',
  'readonly', 'pingInterval', 'disableClientInfo', 'clientInfoTag', 'emitInvalidate',
  'modules', 'functions', 'scripts',
] as const
/** The plugin's own keys inside `redis` (and `redis.cluster`). */
export const PLUGIN_KEYS = ['allowPlaintext', 'allowEviction'] as const

/** Keys of a cluster node's options (`rootNodes[i]`, `defaults`): a client's, less what is cluster-wide. */
export const NODE_KEYS = CLIENT_KEYS.filter((k) => k !== 'modules' && k !== 'functions' && k !== 'scripts')
/**
 * A root node is used only to discover the cluster, and node-redis (6.3) writes these keys into
 * the root node objects it is given (their RESP, command options and maintenance notifications
 * are its own for discovery): a `rootNodes` array another cluster client of the application has
 * used carries them. Accepted there, without effect.
 */
const ROOT_NODE_KEYS = [...NODE_KEYS, 'RESP', 'commandOptions', 'maintNotifications']

/** `createCluster` options the plugin passes on. */
export const CLUSTER_KEYS = [
  'rootNodes', 'defaults', 'minimizeConnections', 'useReplicas', 'maxCommandRedirections',
  'topologyRefreshOnReconnectionAttemptStrategy', 'nodeAddressMap',
] as const
export const CLUSTER_SET = {
  RESP: PLUGIN_SET.RESP,
  clientSideCache: PLUGIN_SET.clientSideCache,
  keyPrefix: PLUGIN_SET.keyPrefix,
  commandOptions: PLUGIN_SET.commandOptions,
  himportRegistry: PLUGIN_SET.himportRegistry,
  modules: 'the plugin sends only its own commands',
  functions: 'the plugin sends only its own commands',
  scripts: 'the plugin sends only its own commands',
} as const

/**
 * `socket` options: node-redis's own, and Node's `net.connect` / `tls.connect` options it passes
 * on (test/types checks this list against the type declarations).
 */
export const SOCKET_KEYS = [
  // node-redis
  'connectTimeout', 'reconnectStrategy', 'socketTimeout', 'tls',
  // net.connect
  'host', 'port', 'path', 'family', 'hints', 'lookup', 'localAddress', 'localPort', 'noDelay', 'keepAlive',
  'keepAliveInitialDelay', 'autoSelectFamily', 'autoSelectFamilyAttemptTimeout', 'blockList', 'fd', 'allowHalfOpen',
  'signal', 'timeout',
  // tls.connect and tls.createSecureContext
  'ca', 'cert', 'key', 'pfx', 'passphrase', 'servername', 'rejectUnauthorized', 'checkServerIdentity',
  'ALPNProtocols', 'ALPNCallback', 'minVersion', 'maxVersion', 'ciphers', 'ecdhCurve', 'sigalgs', 'secureOptions',
  'secureProtocol',
  'secureContext', 'session', 'minDHSize', 'highWaterMark', 'enableTrace', 'requestCert', 'SNICallback',
  'pskCallback', 'crl', 'dhparam', 'honorCipherOrder', 'privateKeyEngine', 'privateKeyIdentifier',
  'clientCertEngine', 'sessionIdContext', 'ticketKeys', 'sessionTimeout', 'allowPartialTrustChain', 'socket',
  'isServer', 'server', 'requestOCSP',
] as const
const SOCKET_HINTS: Readonly<Record<string, string>> = {
  hostname: "use 'host'",
  url: 'the URL is redis.url, beside socket',
  password: 'the password is redis.password, beside socket',
  username: 'the user name is redis.username, beside socket',
  secure: 'use tls: true',
  ssl: 'use tls: true',
  retryStrategy: "use 'reconnectStrategy'",
}

function checkSocket (socket: unknown, path: string): void {
  if (socket === undefined) return
  if (!isPlainObject(socket)) fail(`${path} must be an object`)
  for (const key of Object.keys(socket)) {
    if ((SOCKET_KEYS as readonly string[]).includes(key)) continue
    unknownKey(`${path}.${key}`, key, SOCKET_KEYS, SOCKET_HINTS)
  }
}

function unknownKey (
  name: string, key: string, known: readonly string[], hints: Readonly<Record<string, string>>
): never {
  const hint = Object.hasOwn(hints, key)
    ? hints[key]
    : closest(key, known) === undefined ? undefined : `did you mean '${closest(key, known) as string}'?`
  fail(`unknown option '${name}'${hint === undefined ? '' : ` (${hint})`}`)
}

/** The keys of one client's options (`redis`, a cluster node, `cluster.defaults`). */
function checkClient (
  options: Record<string, unknown>, path: string, known: readonly string[], set: Readonly<Record<string, string>>
): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue
    if (Object.hasOwn(set, key)) fail(`'${path}.${key}' is set by the plugin: ${set[key] as string}${OWN_CHOICE}`)
    unknownKey(`${path}.${key}`, key, known, CLIENT_HINTS)
  }
  // `url: process.env.REDIS_URL` with the variable unset would connect to localhost:6379.
  if (Object.hasOwn(options, 'url') && (typeof options['url'] !== 'string' || options['url'] === '')) {
    fail(`${path}.url is ${options['url'] === '' ? 'empty' : 'missing'} (is REDIS_URL set?): ` +
      'give a redis:// or rediss:// URL, or leave url out and give socket: { host, port }')
  }
  checkSocket(options['socket'], `${path}.socket`)
}

function isClient (value: object): boolean {
  return typeof (value as { connect?: unknown }).connect === 'function' &&
    typeof (value as { sendCommand?: unknown }).sendCommand === 'function'
}

/**
 * Checks the `redis` option. A client the application made is taken as it is (its options are
 * its maker's); connection options and `{ cluster }` options are checked key by key.
 */
export function checkRedisOption (redis: unknown): void {
  if (typeof redis !== 'object' || redis === null) fail('redis must be connection options or a node-redis client')
  if (isClient(redis)) {
    // ioredis has connect() and sendCommand() too, but not node-redis's isOpen.
    if (typeof (redis as { isOpen?: unknown }).isOpen !== 'boolean') {
      fail('redis is a client this plugin cannot drive (an ioredis client?): pass a node-redis client ' +
        '(createClient, createCluster, createSentinel from the redis package) or connection options')
    }
    return
  }
  if (!isPlainObject(redis)) fail('redis must be connection options (a plain object) or a node-redis client')
  // `{ client, allowEviction }`: a client the application made, with the eviction opt-in.
  const wrapped = redis['client']
  if (typeof wrapped === 'object' && wrapped !== null && isClient(wrapped)) {
    const extra = Object.keys(redis).filter((k) => k !== 'client' && k !== 'allowEviction')
    if (extra.length > 0) {
      fail(`beside redis.client only allowEviction is read: '${extra[0] as string}' belongs to the client you made`)
    }
    checkRedisOption(wrapped)
    return
  }
  if (Object.hasOwn(redis, 'cluster')) {
    const extra = Object.keys(redis).filter((k) => k !== 'cluster')
    if (extra.length > 0) {
      fail(`with redis.cluster, every option goes inside it: move '${extra[0] as string}' into redis.cluster ` +
        '(or redis.cluster.defaults for every node)')
    }
    const cluster = redis['cluster']
    if (!isPlainObject(cluster)) fail('redis.cluster must be an object: { rootNodes: [{ url }, …], … }')
    checkClient(cluster, 'redis.cluster', [...CLUSTER_KEYS, ...PLUGIN_KEYS], CLUSTER_SET)
    const nodes = cluster['rootNodes']
    if (!Array.isArray(nodes) || nodes.length === 0) fail('redis.cluster needs a non-empty rootNodes array')
    nodes.forEach((node: unknown, i) => {
      if (!isPlainObject(node)) fail(`redis.cluster.rootNodes[${i}] must be an object such as { url }`)
      checkClient(node, `redis.cluster.rootNodes[${i}]`, ROOT_NODE_KEYS, PLUGIN_SET)
    })
    const defaults = cluster['defaults']
    if (defaults !== undefined) {
      if (!isPlainObject(defaults)) fail('redis.cluster.defaults must be an object')
      checkClient(defaults, 'redis.cluster.defaults', NODE_KEYS, PLUGIN_SET)
    }
    return
  }
  checkClient(redis, 'redis', [...CLIENT_KEYS, ...PLUGIN_KEYS], PLUGIN_SET)
}

/** The methods every `SessionStore` has (store/types.ts); the compiler keeps the list complete. */
export const STORE_METHODS = [
  'peek', 'read', 'create', 'update', 'destroy', 'take', 'peekMember', 'getMember', 'admit', 'dismiss',
  'dismissAll', 'members', 'peekEpoch', 'getEpoch', 'getWithEpoch', 'replaceEpoch', 'bumpEpoch', 'exists',
  'generation', 'hit', 'readHits', 'unhit', 'release', 'clearHits', 'keyring', 'stats', 'close',
] as const satisfies ReadonlyArray<keyof SessionStore>

/** The required (non-optional) members of a SessionStore. */
type RequiredMethods = {
  [K in keyof SessionStore]-?: object extends Pick<SessionStore, K> ? never : K
}[keyof SessionStore]
/** A method added to SessionStore but not to the list above makes this type `never`: a compile error below. */
export type StoreMethodsComplete = Exclude<RequiredMethods, typeof STORE_METHODS[number]> extends never ? true : never
export const STORE_METHODS_COMPLETE: StoreMethodsComplete = true

/**
 * Checks the `store` option: an object with every method of a `SessionStore`. A store of
 * `express-session` (connect-redis and the like: callback `get(sid, cb)`, `set`, `destroy`) is
 * named as such, with the way to use its Redis instead.
 */
export function checkStoreOption (store: unknown): void {
  if (typeof store !== 'object' || store === null) fail('store must be a SessionStore such as createMemoryStore()')
  const missing = STORE_METHODS.filter((m) => typeof (store as Record<string, unknown>)[m] !== 'function')
  if (missing.length === 0) return
  const s = store as Record<string, unknown>
  if (typeof s['get'] === 'function' && typeof s['set'] === 'function' && typeof s['destroy'] === 'function') {
    fail('store is an express-session store (connect-redis or similar), whose callback API this plugin does not use: ' +
      'give the plugin its Redis instead — redis: { url } or redis: client ' +
      '(the node-redis client you passed to the store) — ' +
      'and a keyPrefix of its own; see docs/migration.md')
  }
  fail(`store is not a SessionStore: it lacks ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''} ` +
    '(use createMemoryStore() or redis)')
}
