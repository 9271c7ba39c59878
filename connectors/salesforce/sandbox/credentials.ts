// The sandbox's connected app and admin user. With no Salesforce credentials the connector signs in to the sandbox
// as this app; they protect nothing and are not secrets.
import { to18 } from '../ids.ts';

export const SANDBOX_CLIENT_ID = '3MVG9TierlineSandbox.ConnectedApp';
export const SANDBOX_CLIENT_SECRET = 'tierline-sandbox-client-secret';
export const SANDBOX_USERNAME = 'admin@tierline.sandbox';
export const SANDBOX_ORG_ID = to18('00DTL0000000001');
