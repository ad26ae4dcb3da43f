import { Global, Module } from '@nestjs/common';
import { NatsService } from './nats.service';
import { JetStreamPublisher } from './publish/publisher';

@Global()
@Module({ providers: [NatsService, JetStreamPublisher], exports: [NatsService, JetStreamPublisher] })
export class MessagingModule {}
