// A child process that competes for a role and reports on stdout when it holds it ("elected"), so a test can
// SIGKILL the holder and watch another instance take over.
import { startLeaderElection } from '../../../../server/storage/postgres/leader.ts';

if (import.meta.main) {
  const { url, name, instanceId } = JSON.parse(process.argv[2]!) as { url: string; name: string; instanceId: string };
  startLeaderElection({
    url,
    name,
    instanceId,
    retryMs: 50,
    heartbeatMs: 100,
    heartbeatTimeoutMs: 500,
    onElected: () => void process.stdout.write('elected\n'),
    onDeposed: () => void process.stdout.write('deposed\n'),
  });
  process.stdout.write('ready\n');
}
