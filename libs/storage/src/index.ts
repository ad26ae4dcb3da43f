export * from './mongo.service';
export * from './storage.module';
export * from './insert-once';
export * from './indexes';
export * from './collections';
