/** Injection tokens for what the platform provides. */
export const CONFIG = Symbol('CONFIG');
export const LOGGER = Symbol('LOGGER');
