/**
 * fastify-hardened-session: public entry point. See README.md and ../docs for the contract.
 */
import hardenedSession from './plugin.ts'
import './request-type.ts'

export default hardenedSession
export * from './public.ts'
