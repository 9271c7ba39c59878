// `npm start`: validates the environment, starts the service, prints a banner saying which connectors are real
// and which run against their sandboxes, and shuts down cleanly on SIGINT/SIGTERM.
import { EnvError, loadEnv } from './env.ts';
import { startService } from './service.ts';

let env;
try {
  env = loadEnv(process.env);
} catch (err) {
  if (err instanceof EnvError) {
    process.stderr.write(err.message + '\n');
    process.exit(2);
  }
  throw err;
}

const service = await startService({ env });
const m = env.modes;
const line = (name: string, mode: string) => `  ${name.padEnd(11)} ${mode === 'real' ? 'REAL' : 'sandbox (simulated on loopback; set its credentials to go live)'}`;
process.stdout.write(
  [
    '',
    `Tierline is running on ${service.url}`,
    line('HubSpot', m.hubspot),
    line('Salesforce', m.salesforce),
    line('Telegram', m.telegram),
    `  Console    ${service.url}/  (admin token: ${service.adminTokenFile ? `in ${service.adminTokenFile}` : 'ADMIN_TOKEN'})`,
    `  API        ${service.url}/api/v1/openapi.json · health ${service.url}/readyz · metrics ${service.url}/metrics`,
    service.generator ? `  Sample tickets: ${env.SAMPLE_TICKETS_PER_MINUTE}/min (SANDBOX sample data; pause it in the console)` : '',
    '',
  ]
    .filter((l) => l !== '')
    .join('\n') + '\n\n',
);

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) process.exit(1);
    stopping = true;
    service.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
