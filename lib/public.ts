/**
 * Everything both entry points export (index.ts, side-by-side.ts), but the default export and
 * the type of `request.session`.
 */
export { default as hardenedSession } from './plugin.ts'
export type { SessionDecorator } from './admin.ts'
export type { Session, LoginOptions } from './session.ts'
export type { PasswordLoginArgs, PasswordLoginResult } from './defences/password-login.ts'
export { createMemoryStore, MemoryStore, type MemoryStoreOptions } from './store/memory.ts'
export type {
  SessionStore, SessionRecord, RecordUpdate, IndexEntry, AdmitOptions, AdmitResult, StoreStats,
} from './store/contract.ts'
export { SessionError, errorTable, type SessionErrorCode } from './errors.ts'
export { generateEncryptionKey } from './crypto/field-cipher.ts'
export {
  hashPassword, verifyPassword, needsRehash, verifyAndUpgrade, createPasswords, sharedPasswords,
  type Passwords, type PasswordLogger, type PasswordsContext, type VerifyAndUpgradeResult, type ResolvedPasswordOptions,
} from './password/index.ts'
export type {
  SessionData, SessionKey, SessionValue, SessionEvent, SessionEventType, SessionInfo, PasswordOptions,
  EncryptionKey, EncryptionOptions, CookieOptions, HardenedSessionOptions, RedisConnection, RedisConnectOptions,
  RedisClusterConnectOptions, RedisPluginSetOption, ThrottleLimitOptions, DeviceBoundOptions,
} from './public-types.ts'
