// What the browser apps (the patient app, the staff console) share: navigation, polling, sign-in
// tokens and OIDC sign-in. Browser code only (DOM, Preact): bundled by Vite, type-checked by each app's tsconfig.
export * from './api';
export * from './live';
export * from './navigation';
export * from './poll';
export * from './sign-in';
export * from './table';
export * from './token';
