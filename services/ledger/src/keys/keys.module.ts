import { DynamicModule, Global, Module } from '@nestjs/common';
import type { LedgerConfig } from '../config';
import type { KeyEncryptionKeyProvider } from '@clinical-ledger/log';
import { KEK_PROVIDER, loadKekProvider } from '../crypto/kek';
import { loadSigningKeys, SigningKeys } from './signing-keys';
import { loadVerifierKeys, VerifierKeys } from './verifier-keys';

export interface WriterKeyOptions {
  /** A KMS/HSM-backed signer instead of LEDGER_SIGNING_KEY_FILE. */
  signingKeys?: SigningKeys;
  /** A KMS-backed key-encryption key instead of LEDGER_KEK_FILE. */
  kek?: KeyEncryptionKeyProvider;
}

/**
 * The keys of one role, loaded at start (a bad key file stops the service with a clear message).
 * A writer gets the signing key, its public half and the KEK; a reader gets the public keys only:
 * SigningKeys and KEK_PROVIDER do not exist in a reader's module graph.
 */
@Global()
@Module({})
export class LedgerKeysModule {
  static forWriter(config: LedgerConfig, opts: WriterKeyOptions = {}): DynamicModule {
    const signingKeys = opts.signingKeys ?? loadSigningKeys(config);
    return {
      module: LedgerKeysModule,
      providers: [
        { provide: SigningKeys, useValue: signingKeys },
        { provide: VerifierKeys, useValue: signingKeys.verifier },
        { provide: KEK_PROVIDER, useValue: opts.kek ?? loadKekProvider(config) },
      ],
      exports: [SigningKeys, VerifierKeys, KEK_PROVIDER],
    };
  }

  static forReader(config: LedgerConfig): DynamicModule {
    return {
      module: LedgerKeysModule,
      providers: [{ provide: VerifierKeys, useValue: loadVerifierKeys(config) }],
      exports: [VerifierKeys],
    };
  }
}
