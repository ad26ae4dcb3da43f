// Two languages, chosen from the browser and switchable; dates follow the chosen locale.
export type Locale = 'en' | 'zh-CN';

const en = {
  title: 'My health record',
  language: 'Language',
  navRecords: 'My records',
  navAccess: 'Who saw my record',
  navConsents: 'My consents',
  signedOut: 'You are not signed in. Open the sign-in link your hospital gave you.',
  signInPrompt: 'You are not signed in.',
  signIn: 'Sign in',
  signingIn: 'Signing in…',
  loading: 'Loading…',
  noRecords: 'No records yet.',
  hospital: 'Hospital',
  dataClass: 'Data class',
  recordKind: 'Type',
  recordedAt: 'Recorded',
  open: 'Open',
  verified: 'Verified on this phone',
  notVerified: 'Not verified',
  checking: 'Checking…',
  notYetCheckpointed: 'Waiting for the hospital to sign the next checkpoint',
  cosignedBy: (n: number) => `cosigned by ${n} witness${n === 1 ? '' : 'es'}`,
  record: 'Record',
  back: 'Back',
  readRecorded: 'This read was recorded on the chain.',
  forbidden: 'This record is not yours, so it cannot be shown.',
  noAccess: 'Nobody has looked at your record yet.',
  liveOn: 'Live: new entries appear here as they happen.',
  liveOff: 'Connecting to the live log…',
  permitted: 'Permitted',
  denied: 'Denied',
  breakGlass: 'Emergency access',
  who: 'Who',
  why: 'Why',
  role: 'Role',
  you: 'You',
  roles: { patient: 'patient', clinician: 'clinician', nurse: 'nurse', registration: 'registration', admin: 'administrator', auditor: 'auditor', service: 'system service', integration: 'hospital system' } as Record<string, string>,
  consentsNone: 'Nobody has your consent right now.',
  grantTitle: 'Let someone see my records',
  grantActor: 'Clinician (their user id)',
  grantClass: 'What they may see',
  grantPurpose: 'What for',
  grantUntil: 'Until (optional)',
  grant: 'Grant',
  revoke: 'Revoke',
  revoked: 'revoked',
  revokedTitle: 'Revoked',
  revokedNote: 'Revoked: from the next read on, this no longer lets anyone in.',
  anyone: 'anyone',
  allRecords: 'all your records',
  consentSentence: (who: string, what: string, why: string, until?: string) => `${who} may see ${what} for ${why}${until ? ` until ${until}` : ''}.`,
  denySentence: (who: string, what: string) => `${who} may not see ${what}.`,
  purposes: { TREAT: 'treatment', ETREAT: 'emergency treatment', HPAYMT: 'payment', HRESCH: 'research', PATRQT: 'your own request' } as Record<string, string>,
  classes: { lab: 'your lab results', imaging: 'your imaging', medication: 'your medications', encounter: 'your visits', order: 'your orders', procedure: 'your procedures', condition: 'your conditions', scheduling: 'your appointments', all: 'all your records' } as Record<string, string>,
  /** Record kinds in plain words, by the end of the event type (HL7 v2 message or FHIR resource). */
  kinds: { 'adt.a01': 'Admitted to hospital', 'adt.a03': 'Discharged', 'adt.a04': 'Registered for a visit', 'adt.a08': 'Your details were updated', 'oru.r01': 'Lab result', 'orm.o01': 'Order', observation: 'Test result', diagnosticreport: 'Report', encounter: 'Visit', medicationrequest: 'Prescription', condition: 'Diagnosis', procedure: 'Procedure' } as Record<string, string>,
  reasons: {
    core_hash_mismatch: 'this entry was changed after the hospital signed it',
    proof_malformed: 'the proof has the wrong shape',
    proof_root_mismatch: 'the entry or its proof was altered: it does not lead to the signed checkpoint',
    note_malformed: 'the checkpoint is malformed',
    note_not_signed_by_hospital: 'the checkpoint is not signed by the hospital key this app trusts',
    note_bad_signature: "the hospital's signature on the checkpoint does not match",
    checkpoint_mismatch: 'the proof is for a different checkpoint',
    cosignature_invalid: "a witness's cosignature does not match",
    bad_key: 'the pinned key is invalid',
    evidence_unavailable: 'the hospital could not prove this entry is in its signed log',
  } as Record<string, string>,
};

type Messages = typeof en;
/** The messages of one language (every view takes them as `t`). */
export type Msgs = Messages;

const zh: Messages = {
  title: '我的健康档案',
  language: '语言',
  navRecords: '我的记录',
  navAccess: '谁查看了我的记录',
  navConsents: '我的授权',
  signedOut: '您尚未登录。请打开医院提供的登录链接。',
  signInPrompt: '您尚未登录。',
  signIn: '登录',
  signingIn: '正在登录…',
  loading: '加载中…',
  noRecords: '暂无记录。',
  hospital: '医院',
  dataClass: '数据类别',
  recordKind: '类型',
  recordedAt: '记录时间',
  open: '打开',
  verified: '已在本机验证',
  notVerified: '未通过验证',
  checking: '正在验证…',
  notYetCheckpointed: '等待医院签署下一个检查点',
  cosignedBy: (n: number) => `已由 ${n} 个见证方共同签名`,
  record: '记录',
  back: '返回',
  readRecorded: '本次查看已记录在链上。',
  forbidden: '这条记录不属于您，无法显示。',
  noAccess: '还没有人查看过您的记录。',
  liveOn: '实时：新的查看记录会即时显示在这里。',
  liveOff: '正在连接实时记录…',
  permitted: '已允许',
  denied: '已拒绝',
  breakGlass: '紧急访问',
  who: '访问者',
  why: '目的',
  role: '角色',
  you: '您本人',
  roles: { patient: '患者', clinician: '医生', nurse: '护士', registration: '登记人员', admin: '管理员', auditor: '审计员', service: '系统服务', integration: '医院系统' },
  consentsNone: '目前没有人获得您的授权。',
  grantTitle: '允许他人查看我的记录',
  grantActor: '医生（用户编号）',
  grantClass: '可查看的内容',
  grantPurpose: '用途',
  grantUntil: '截止日期（可选）',
  grant: '授权',
  revoke: '撤销',
  revoked: '已撤销',
  revokedTitle: '已撤销的授权',
  revokedNote: '已撤销：从下一次查看起，不再允许任何人凭此授权查看。',
  anyone: '任何人',
  allRecords: '您的全部记录',
  consentSentence: (who, what, why, until) => `${who} 可以为${why}查看${what}${until ? `，截止到 ${until}` : ''}。`,
  denySentence: (who, what) => `${who} 不得查看${what}。`,
  purposes: { TREAT: '治疗', ETREAT: '急救', HPAYMT: '付费', HRESCH: '研究', PATRQT: '您本人的请求' },
  classes: { lab: '您的化验结果', imaging: '您的影像', medication: '您的用药', encounter: '您的就诊', order: '您的医嘱', procedure: '您的手术与操作', condition: '您的诊断', scheduling: '您的预约', all: '您的全部记录' },
  kinds: { 'adt.a01': '入院', 'adt.a03': '出院', 'adt.a04': '就诊登记', 'adt.a08': '个人信息已更新', 'oru.r01': '化验结果', 'orm.o01': '医嘱', observation: '检查结果', diagnosticreport: '报告', encounter: '就诊', medicationrequest: '处方', condition: '诊断', procedure: '手术与操作' },
  reasons: {
    core_hash_mismatch: '该条目在医院签名后被修改过',
    proof_malformed: '证明格式不正确',
    proof_root_mismatch: '条目或其证明被篡改：无法推导出已签名的检查点',
    note_malformed: '检查点格式不正确',
    note_not_signed_by_hospital: '检查点不是由本应用信任的医院密钥签名的',
    note_bad_signature: '医院在检查点上的签名不匹配',
    checkpoint_mismatch: '证明对应的是另一个检查点',
    cosignature_invalid: '见证方的共同签名不匹配',
    bad_key: '固定的密钥无效',
    evidence_unavailable: '医院无法证明该条目在其已签名的日志中',
  },
};

export const MESSAGES: Record<Locale, Messages> = { en, 'zh-CN': zh };

export function pickLocale(saved: string | null, languages: readonly string[]): Locale {
  if (saved === 'en' || saved === 'zh-CN') return saved;
  for (const l of languages) {
    if (l.toLowerCase().startsWith('zh')) return 'zh-CN';
    if (l.toLowerCase().startsWith('en')) return 'en';
  }
  return 'en';
}

export function formatTime(iso: string | undefined, locale: Locale): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' }).format(d);
}

export function formatDate(iso: string | undefined, locale: Locale): string | undefined {
  if (!iso) return undefined;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : new Intl.DateTimeFormat(locale, { dateStyle: 'long' }).format(d);
}

/** The plain-words kind of an event type (org.hl7.v2.adt.a01, org.hl7.fhir.r4.observation), else the type itself. */
export function kindOf(type: string, kinds: Record<string, string>): string {
  const parts = type.toLowerCase().split('.');
  return kinds[parts.slice(-2).join('.')] ?? kinds[parts[parts.length - 1] ?? ''] ?? type;
}
