export * from './mongo.service';
export * from './storage.module';
